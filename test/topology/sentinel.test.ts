import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Redis } from 'ioredis'
import { loadConfig } from '../../src/config'
import { createRedisClient, waitReady } from '../../src/store/connect'
import { createRedisTokenStore } from '../../src/store/redis'
import { listAll, storeContract } from '../store/contract'
import { bearer, downloadPath, fakeClock, TEST_SECRET, uniquePrefix } from '../support/helpers'
import { waitFor } from '../support/poll'
import {
	productionClient,
	roleOf,
	type SentinelGroup,
	startRedis,
	startScriptedSentinel,
	startSentinels,
} from './fixtures'
import { serviceOn, serviceScenarios, type Topology } from './scenarios'

// A real primary + replica watched by 3 sentinels (down-after-milliseconds
// 1000) on loopback: docs/contract.md §4 says the service follows its failovers within
// ~2 s of the sentinels completing them, whether the primary died or hangs,
// and never writes to a demoted primary.

let group: SentinelGroup
/** When the sentinels last switched primaries (ms epoch). */
let lastSwitchAt = 0
let client: Redis
const clock = fakeClock()

const topology: () => Topology = () => ({
	label: 'sentinel',
	env: group.env,
	primaryFor: () => group.primary(),
	replicaOf: async (primary) => group.other(primary),
	// Redis has failed over when a sentinel names the new primary.
	async waitFailover(from, to, timeoutMs) {
		const { at, to: named } = await group.waitSwitch(from, timeoutMs)
		if (named !== to) throw new Error(`sentinels promoted ${named.address}, not ${to.address}`)
		lastSwitchAt = at
		return at
	},
	async restore(former, primary) {
		if (!former.running) await group.restartAsReplica(former, primary)
		else if (former.paused) former.resume()
		// The sentinels would demote a returning old primary themselves, but only at
		// their next INFO round (every 10 s); the test does it now, as they would.
		if ((await roleOf(former)) === 'master') await former.query(['REPLICAOF', '127.0.0.1', String(primary.port)])
		await group.waitHealthy()
		// The next test's fault must meet a group that can fail over again at once.
		await group.waitQuiet(lastSwitchAt)
	},
	primaries: async () => [await group.primary()],
	describe: () => group.describe(),
	variants: [{ name: '', apply: async () => {} }],
})

beforeAll(async () => {
	group = await startSentinels()
	client = await productionClient(group.env, Redis)
}, 60_000)

afterAll(async () => {
	client?.disconnect()
	await group?.stop()
})

storeContract(
	'redis sentinel',
	() => createRedisTokenStore(client, { prefix: uniquePrefix(), clock: clock.now }),
	clock,
)

describe('the service on Redis Sentinel', () => {
	test('issue, download, list and revoke work through the primary the sentinels name', async () => {
		const t = await serviceOn(topology())
		try {
			await t.putFile('sam', 'v.mp4', 'video of sam')
			const { token, jti } = await t.issue('sam', 'v.mp4')
			const res = await t.request(downloadPath('sam', 'v.mp4'), { headers: bearer(token) })
			expect(res.status).toBe(200)
			expect(await res.text()).toBe('video of sam')
			expect((await listAll(t.deps.store, 'sam')).map((x) => x.jti)).toEqual([jti])
			expect(await t.deps.store.revokeAll('sam')).toBe(1)
			expect((await t.request(downloadPath('sam', 'v.mp4'), { headers: bearer(token) })).status).toBe(401)
		} finally {
			await t.close()
		}
	})

	test('a node the sentinels name but that reports itself a replica is never used', async () => {
		const primary = await startRedis()
		const replica = await startRedis(primary)
		const liar = startScriptedSentinel('dlg', replica)
		const c = createRedisClient(
			loadConfig({ JWT_SECRET: TEST_SECRET, REDIS_SENTINELS: liar.address, REDIS_SENTINEL_NAME: 'dlg' }),
		)
		if (!c) throw new Error('no client')
		c.on('error', () => {})
		try {
			// The role check (INFO on connect) refuses the replica, so the client never gets ready…
			await expect(waitReady(c, 2500)).rejects.toThrow('not ready after 2500 ms')
			await expect(c.set('written', 'nowhere')).rejects.toThrow()
			expect(await replica.query(['DBSIZE'])).toBe(0)
			// …and connects as soon as the sentinel names a node that really is primary.
			liar.name(primary, 1)
			await waitFor('client ready on the real primary', 5000, async () =>
				c.status === 'ready' ? true : `status ${c.status}`,
			)
			await c.set('written', 'here')
			expect(await primary.query(['GET', 'written'])).toBe('here')
		} finally {
			c.disconnect()
			liar.stop()
			await replica.dispose()
			await primary.dispose()
		}
	})

	test('when the sentinels name a new primary without announcing it, writes move there within ~2 s', async () => {
		// The old primary never dies or hangs, so nothing but asking the sentinels
		// reveals the switch: the case of a missed +switch-master, or of a frozen
		// primary that wakes up still believing it is primary.
		const old = await startRedis()
		const next = await startRedis(old)
		const sentinel = startScriptedSentinel('dlg', old)
		const c = createRedisClient(
			loadConfig({ JWT_SECRET: TEST_SECRET, REDIS_SENTINELS: sentinel.address, REDIS_SENTINEL_NAME: 'dlg' }),
		)
		if (!c) throw new Error('no client')
		c.on('error', () => {})
		try {
			await waitReady(c, 5000)
			await c.set('k', 'before')
			expect(await old.query(['GET', 'k'])).toBe('before')
			await next.query(['REPLICAOF', 'NO', 'ONE'])
			sentinel.name(next, 1)
			const switchedAt = Date.now()
			const movedAt = await waitFor(
				'writes reaching the new primary',
				5000,
				async () => {
					await c.set('k', 'after').catch(() => null)
					return (await next.query(['GET', 'k'])) === 'after' ? Date.now() : 'not yet'
				},
				20,
			)
			console.log(
				`[topology-figures] sentinel silent switch: writes moved ${movedAt - switchedAt} ms after the sentinels changed their answer`,
			)
			expect(movedAt - switchedAt).toBeLessThanOrEqual(2000)
			// From then on nothing more reaches the old one.
			await old.query(['SET', 'k', 'stale'])
			for (let i = 0; i < 20; i++) await c.set(`k${i}`, 'new')
			expect(await old.query(['EXISTS', 'k0'])).toBe(0)
		} finally {
			c.disconnect()
			sentinel.stop()
			await next.dispose()
			await old.dispose()
		}
	})

	test('a failover announced while a reconnect is still asking the sentinels does not end the client for good', async () => {
		// The primary dies; while the client's reconnect waits on a sentinel's answer, the
		// failover completes and +switch-master reaches the failover detector, which drops
		// the connection attempt. ioredis then ends the client ("Connection is closed.", status
		// end): without a reconnect of our own, the instance answered 503 until restarted.
		const old = await startRedis()
		const next = await startRedis(old)
		const sentinel = startScriptedSentinel('dlg', old)
		const c = createRedisClient(
			loadConfig({ JWT_SECRET: TEST_SECRET, REDIS_SENTINELS: sentinel.address, REDIS_SENTINEL_NAME: 'dlg' }),
		)
		if (!c) throw new Error('no client')
		c.on('error', () => {})
		try {
			await waitReady(c, 5000)
			// The failover detector subscribes once the client is connected.
			await Bun.sleep(200)
			sentinel.hold()
			await old.stop()
			await waitFor('a reconnect asking the sentinel', 5000, async () => (sentinel.held() > 0 ? true : 'none yet'), 10)
			await next.query(['REPLICAOF', 'NO', 'ONE'])
			sentinel.name(next, 1)
			sentinel.announceSwitch()
			await Bun.sleep(50)
			sentinel.release()
			await waitFor('the client ready again', 3000, async () => (c.status === 'ready' ? true : c.status), 20)
			await c.set('k', 'after')
			expect(await next.query(['GET', 'k'])).toBe('after')
		} finally {
			c.disconnect()
			sentinel.stop()
			await next.dispose()
			await old.dispose()
		}
	})

	test('quit() leaves no connection to the sentinels behind', async () => {
		// Connections of clients, told from the sentinels' links to one another by their last command.
		const clientCommands = [
			'cmd=subscribe',
			'cmd=sentinel|master ',
			'cmd=sentinel|get-master-addr-by-name',
			'cmd=sentinel|sentinels',
		]
		const connected = async () => {
			let total = 0
			for (const s of group.sentinels)
				for (const line of String(await s.query(['CLIENT', 'LIST'])).split('\n'))
					if (clientCommands.some((c) => line.includes(c))) total++
			return total
		}
		// Other clients of this file may still be settling: take the count once it holds still.
		let last = -1
		const before = await waitFor(
			'a steady count of client connections',
			5000,
			async () => {
				const now = await connected()
				const steady = now === last
				last = now
				return steady ? now : 'still moving'
			},
			500,
		)
		const c = createRedisClient(loadConfig({ JWT_SECRET: TEST_SECRET, ...group.env }))
		if (!c) throw new Error('no client')
		c.on('error', () => {})
		await waitReady(c, 5000)
		// The failover detector and the primary watch hold connections to every sentinel…
		await waitFor('the client subscribed to the sentinels', 3000, async () =>
			(await connected()) >= before + group.sentinels.length ? true : 'not yet',
		)
		await c.quit()
		// …and closing the client closes them all (ioredis alone keeps the detector's, reconnecting forever).
		await waitFor('every sentinel connection closed', 3000, async () => {
			const now = await connected()
			return now <= before ? true : `${now - before} still open`
		})
	})

	serviceScenarios(topology)
})
