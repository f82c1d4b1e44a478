import { afterAll, beforeAll, expect, test } from 'bun:test'
import { Cluster } from 'ioredis'
import { bearer, downloadPath, makeTestApp, randomBytesOf, sha256 } from '../../support/helpers'
import { productionClient, type RedisCluster, startCluster } from '../../topology/fixtures'
import { atLeast, ofType, tokenEventsWhen, typesOf } from './stream'

// On Redis Cluster the stream lives in another slot than a user's keys, so the
// scripts hand their events back and the instance appends them right after
// (docs/contract.md §7; the README's Cluster caveat). Three primaries, no
// replicas: only the slot layout matters here.

let cluster: RedisCluster
let client: Cluster
beforeAll(async () => {
	cluster = await startCluster({ replicasPerPrimary: 0 })
	client = await productionClient({ REDIS_CLUSTER_NODES: cluster.seeds }, Cluster)
}, 60_000)
afterAll(async () => {
	client?.disconnect()
	await cluster?.stop()
})

test("a budgeted download's events, handed back by the scripts, land in the stream once each", async () => {
	const t = await makeTestApp({ store: 'memory', env: { REDIS_CLUSTER_NODES: cluster.seeds } })
	try {
		const streamKey = `${t.config.redisKeyPrefix}events`
		const user = 'cluster-user'
		expect(await cluster.slotOf(streamKey)).not.toBe(await cluster.slotOf(`{${user}}`))
		const size = 2 * 1024 * 1024
		const bytes = await t.putFile(user, 'v.mp4', randomBytesOf(size))
		const { token, jti } = await t.issue(user, 'v.mp4', '?max_uses=1')
		const res = await t.request(downloadPath(user, 'v.mp4'), {
			headers: { ...bearer(token), 'X-Request-Id': 'cluster-dl' },
		})
		expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(sha256(bytes))

		const events = await tokenEventsWhen(client, streamKey, jti, atLeast(1, 'token.used_up'))
		expect(typesOf(events)).toEqual(['token.issued', 'download.started', 'download.completed', 'token.used_up'])
		expect(ofType(events, 'download.started')[0]?.data).toMatchObject({ copy: 1, size, request_id: 'cluster-dl' })
		expect(ofType(events, 'download.completed')[0]?.data).toMatchObject({ copy: 1, size, request_id: 'cluster-dl' })
		expect(new Set(events.map((e) => e.id)).size).toBe(4)
	} finally {
		await t.close()
	}
})
