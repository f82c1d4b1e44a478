import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import { Cluster } from 'ioredis'
import { loadConfig } from '../src/config'
import { createRedisClient } from '../src/store/connect'
import { createRedisTokenStore } from '../src/store/redis'
import { bearer, downloadPath, fakeClock, makeTestApp, TEST_SECRET, uniquePrefix } from './helpers'
import { freePort } from './redis-server'
import { storeContract } from './store-contract'

// A real three-master Redis Cluster on loopback: SPEC §4 says the service
// works on it unchanged, because every script touches one {user_id} slot.

const ports = [freePort(), freePort(), freePort()]
const nodes = ports.map((p) => `127.0.0.1:${p}`).join(',')
const servers: Subprocess[] = []
let dir = ''
let client: Cluster
const clock = fakeClock()

async function redisCli(...args: string[]): Promise<string> {
	const proc = Bun.spawn(['redis-cli', ...args], { stdout: 'pipe', stderr: 'pipe' })
	const out = await new Response(proc.stdout).text()
	await proc.exited
	return out
}

beforeAll(async () => {
	dir = await mkdtemp(join(tmpdir(), 'dlg-cluster-'))
	for (const port of ports)
		servers.push(
			Bun.spawn(
				[
					'redis-server',
					'--port',
					String(port),
					'--bind',
					'127.0.0.1',
					'--cluster-enabled',
					'yes',
					'--cluster-config-file',
					join(dir, `nodes-${port}.conf`),
					'--cluster-node-timeout',
					'2000',
					'--save',
					'',
					'--appendonly',
					'no',
					'--dir',
					dir,
				],
				{ stdout: 'ignore', stderr: 'inherit' },
			),
		)
	for (const port of ports)
		for (let i = 0; i < 100 && !(await redisCli('-p', String(port), 'ping')).includes('PONG'); i++) await Bun.sleep(25)
	await redisCli(
		'--cluster',
		'create',
		...ports.map((p) => `127.0.0.1:${p}`),
		'--cluster-replicas',
		'0',
		'--cluster-yes',
	)
	for (let i = 0; i < 200; i++) {
		const states = await Promise.all(ports.map((p) => redisCli('-p', String(p), 'cluster', 'info')))
		if (states.every((s) => s.includes('cluster_state:ok'))) break
		await Bun.sleep(50)
	}
	// The service's own client, built from REDIS_CLUSTER_NODES exactly as in production.
	const built = createRedisClient(loadConfig({ JWT_SECRET: TEST_SECRET, REDIS_CLUSTER_NODES: nodes }))
	if (!(built instanceof Cluster)) throw new Error('REDIS_CLUSTER_NODES did not build a Cluster client')
	client = built
	await client.connect()
}, 30_000)

afterAll(async () => {
	client.disconnect()
	for (const server of servers) server.kill('SIGTERM')
	await Promise.all(servers.map((s) => s.exited))
	await rm(dir, { recursive: true, force: true })
})

storeContract('redis cluster', () => createRedisTokenStore(client, { prefix: uniquePrefix(), clock: clock.now }), clock)

describe('the service on Redis Cluster', () => {
	test('users land on different masters, and issue, download, list and revoke all work', async () => {
		const t = await makeTestApp({ env: { REDIS_CLUSTER_NODES: nodes } })
		const users = Array.from({ length: 12 }, (_, i) => `user-${i}`)
		for (const user of users) await t.putFile(user, 'v.mp4', `video of ${user}`)

		const slots = await Promise.all(users.map((u) => client.call('CLUSTER', 'KEYSLOT', `{${u}}`) as Promise<number>))
		const owners = new Set(slots.map((slot) => Math.floor(slot / (16384 / 3))))
		expect(owners.size).toBeGreaterThan(1)

		for (const user of users) {
			const { token, jti } = await t.issue(user, 'v.mp4', '?max_uses=1')
			const res = await t.request(downloadPath(user, 'v.mp4'), { headers: bearer(token) })
			expect(res.status).toBe(200)
			expect(await res.text()).toBe(`video of ${user}`)
			expect((await t.request(downloadPath(user, 'v.mp4'), { headers: bearer(token) })).status).toBe(401)
			const listed = await t.deps.store.list(user)
			expect(listed.map((x) => x.jti)).toEqual([jti])
			expect(await t.deps.store.revokeAll(user)).toBe(1)
		}
		await t.close()
	})
})
