import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Cluster } from 'ioredis'
import { loadConfig } from '../../src/config'
import { createRedisClient, waitReady } from '../../src/store/connect'
import { createRedisTokenStore } from '../../src/store/redis'
import { listAll, storeContract } from '../store/contract'
import { bearer, downloadPath, fakeClock, TEST_SECRET, uniquePrefix } from '../support/helpers'
import { productionClient, type RedisCluster, startCluster, waitPrimary } from './fixtures'
import { serviceOn, serviceScenarios, type Topology } from './scenarios'

// A real Redis Cluster on loopback, 3 primaries + 3 replicas with
// cluster-node-timeout 1000 ms: docs/contract.md §4 says the service works on it
// unchanged (every script touches one {user_id} slot) and follows its
// failovers, whether the primary died or hangs, and whatever
// cluster-require-full-coverage says.

let cluster: RedisCluster
let client: Cluster
const clock = fakeClock()

const topology: () => Topology = () => ({
	label: 'cluster',
	env: { REDIS_CLUSTER_NODES: cluster.seeds },
	async primaryFor(user) {
		return cluster.primaryOf(await cluster.slotOf(`{${user}}`))
	},
	replicaOf: (primary) => cluster.replicaOf(primary),
	// Redis has failed over when the replica says it is primary.
	waitFailover: (_from, to, timeoutMs) => waitPrimary(to, timeoutMs),
	async restore(former) {
		if (!former.running) await former.start()
		else if (former.paused) former.resume()
		await cluster.waitHealthy()
	},
	async describe() {
		const view = await cluster.view()
		return view.map((v) => `${v.address} ${v.flags.join(',')} slots ${v.slots}`).join('; ')
	},
	async primaries() {
		const view = await cluster.view()
		return view.filter((v) => v.flags.includes('master') && v.slots > 0).map((v) => cluster.node(v.address))
	},
	variants: [
		{ name: 'cluster-require-full-coverage yes', apply: () => cluster.setFullCoverage(true) },
		{ name: 'cluster-require-full-coverage no', apply: () => cluster.setFullCoverage(false) },
	],
})

beforeAll(async () => {
	cluster = await startCluster()
	client = await productionClient({ REDIS_CLUSTER_NODES: cluster.seeds }, Cluster)
}, 60_000)

afterAll(async () => {
	client?.disconnect()
	await cluster?.stop()
})

storeContract('redis cluster', () => createRedisTokenStore(client, { prefix: uniquePrefix(), clock: clock.now }), clock)

describe('the service on Redis Cluster', () => {
	test('users land on different primaries, and issue, download, list and revoke all work', async () => {
		const t = await serviceOn(topology())
		try {
			const users = Array.from({ length: 12 }, (_, i) => `user-${i}`)
			for (const user of users) await t.putFile(user, 'v.mp4', `video of ${user}`)

			const owners = new Set(await Promise.all(users.map(async (u) => (await topology().primaryFor(u)).address)))
			expect(owners.size).toBeGreaterThan(1)

			for (const user of users) {
				const { token, jti } = await t.issue(user, 'v.mp4', '?max_uses=1')
				const res = await t.request(downloadPath(user, 'v.mp4'), { headers: bearer(token) })
				expect(res.status).toBe(200)
				expect(await res.text()).toBe(`video of ${user}`)
				expect((await t.request(downloadPath(user, 'v.mp4'), { headers: bearer(token) })).status).toBe(401)
				const { jti: live } = await t.issue(user, 'v.mp4')
				const listed = (await listAll(t.deps.store, user)).map((x) => x.jti)
				expect(listed).toContain(live)
				expect(listed.every((x) => x === live || x === jti)).toBe(true)
				expect(await t.deps.store.revokeAll(user)).toBeGreaterThanOrEqual(1)
				expect(await listAll(t.deps.store, user)).toEqual([])
			}
		} finally {
			await t.close()
		}
	})

	test('a command to a primary that hangs fails within ~1 s, retries and redirections included', async () => {
		// REDIS_NAT_MAP sends one primary's announced address to a listener that
		// accepts connections and never answers: a hung node, reached through NAT.
		let accepted = 0
		const silent = Bun.listen({
			hostname: '127.0.0.1',
			port: 0,
			socket: {
				open() {
					accepted++
				},
				data() {},
			},
		})
		const hungUser = 'hung-user'
		const hung = await topology().primaryFor(hungUser)
		let okUser = ''
		for (let i = 0; !okUser; i++) if ((await topology().primaryFor(`ok-${i}`)) !== hung) okUser = `ok-${i}`
		const c = createRedisClient(
			loadConfig({
				JWT_SECRET: TEST_SECRET,
				REDIS_CLUSTER_NODES: cluster.nodes
					.filter((n) => n !== hung)
					.map((n) => n.address)
					.join(','),
				REDIS_NAT_MAP: `${hung.address}=127.0.0.1:${silent.port}`,
			}),
		)
		if (!c) throw new Error('no client')
		c.on('error', () => {})
		try {
			await waitReady(c, 10_000)
			const timed = async (key: string) => {
				const started = Date.now()
				const outcome = await c.get(key).then(
					() => 'ok',
					(err: unknown) => (err instanceof Error ? err.message : String(err)),
				)
				return { outcome, ms: Date.now() - started }
			}
			// The first command opens the connection, whose handshake then hangs; the
			// next ones find it not ready and go round ioredis' retry loop meanwhile.
			const first = timed(`{${hungUser}}:a`)
			await Bun.sleep(100)
			const rest = await Promise.all([timed(`{${hungUser}}:b`), Bun.sleep(300).then(() => timed(`{${hungUser}}:c`))])
			const all = [await first, ...rest]
			console.log(
				`${'[topology-figures]'} cluster hung node: commands failed after ${all.map((r) => r.ms).join(', ')} ms`,
			)
			for (const r of all) {
				expect(r.outcome).not.toBe('ok')
				expect(r.ms).toBeLessThanOrEqual(1400)
			}
			expect(accepted).toBeGreaterThan(0)
			// The other primaries keep serving.
			expect((await timed(`{${okUser}}:x`)).outcome).toBe('ok')
		} finally {
			c.disconnect()
			silent.stop(true)
		}
	})

	serviceScenarios(topology)
})
