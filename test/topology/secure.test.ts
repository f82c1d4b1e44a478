import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { Env } from '../../src/config'
import { bearer, downloadPath, makeTestApp, type TestApp } from '../support/helpers'
import { pollUntil } from '../support/poll'
import type { RedisServer } from '../support/redis-server'
import { type Forwarder, makeCertificates, startCluster, startForwarder, startRedis, startSentinels } from './fixtures'

// A single Redis, Cluster and Sentinel as they are run in production: TLS only (no plain
// port), the default user switched off in favour of an ACL user, sentinels
// with their own password, and (Cluster, Sentinel) every data node reachable
// only through an address translated by REDIS_NAT_MAP (Docker, Kubernetes).

const user = { name: 'dlg', password: 'dlg-acl-password-0123456789' }
const SENTINEL_PASSWORD = 'sentinel-password-9876543210'
let certs: Awaited<ReturnType<typeof makeCertificates>>

beforeAll(async () => {
	certs = await makeCertificates()
})
afterAll(async () => {
	await certs?.dispose()
})

/** Forwarders for `nodes` and the REDIS_NAT_MAP sending each node's announced address through its own. */
async function behindNat(nodes: readonly RedisServer[]): Promise<{ forwarders: Forwarder[]; natMap: string }> {
	const forwarders = await Promise.all(nodes.map(startForwarder))
	const natMap = nodes.map((n, i) => `${n.address}=${forwarders[i]?.address}`).join(',')
	return { forwarders, natMap }
}

async function issueAndDownload(app: TestApp, users: readonly string[]) {
	for (const u of users) {
		await app.putFile(u, 'v.mp4', `video of ${u}`)
		const { token } = await app.issue(u, 'v.mp4')
		const res = await app.request(downloadPath(u, 'v.mp4'), { headers: bearer(token) })
		expect(res.status).toBe(200)
		expect(await res.text()).toBe(`video of ${u}`)
	}
}

const secured = (env: Env): Env => ({
	...env,
	REDIS_USERNAME: user.name,
	REDIS_PASSWORD: user.password,
	REDIS_TLS: 'true',
	REDIS_CA_FILE: certs.caFile,
})

describe('TLS, ACL user and NAT map', () => {
	test('a single Redis: rediss:// with the CA file, as the ACL user', async () => {
		const redis = await startRedis(undefined, { tls: certs, user })
		let app: TestApp | undefined
		try {
			app = await makeTestApp({
				store: 'memory',
				env: {
					REDIS_URL: `rediss://127.0.0.1:${redis.port}`,
					REDIS_USERNAME: user.name,
					REDIS_PASSWORD: user.password,
					REDIS_CA_FILE: certs.caFile,
				},
			})
			await issueAndDownload(app, ['ana'])
		} finally {
			await app?.close()
			await redis.dispose()
		}
	})

	test('Cluster: every node over TLS, as the ACL user, through its translated address', async () => {
		const cluster = await startCluster({ primaries: 3, replicasPerPrimary: 0, security: { tls: certs, user } })
		const { forwarders, natMap } = await behindNat(cluster.nodes)
		let app: TestApp | undefined
		try {
			app = await makeTestApp({
				store: 'memory',
				env: secured({ REDIS_CLUSTER_NODES: cluster.seeds, REDIS_NAT_MAP: natMap }),
			})
			await issueAndDownload(
				app,
				Array.from({ length: 12 }, (_, i) => `tls-user-${i}`),
			)
			// The slots name the announced addresses; the client went through the translated ones, to every primary.
			expect(forwarders.map((f) => f.connections > 0)).toEqual(forwarders.map(() => true))
		} finally {
			await app?.close()
			for (const f of forwarders) f.stop()
			await cluster.stop()
		}
	}, 60_000)

	test("Sentinel: sentinels and nodes over TLS, the sentinels' own password, the ACL user on the nodes, NAT", async () => {
		const group = await startSentinels({
			sentinels: 1,
			security: { tls: certs, user },
			sentinelPassword: SENTINEL_PASSWORD,
		})
		const { forwarders, natMap } = await behindNat(group.data)
		let app: TestApp | undefined
		try {
			app = await makeTestApp({
				store: 'memory',
				env: secured({ ...group.env, REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD, REDIS_NAT_MAP: natMap }),
			})
			await issueAndDownload(app, ['sam', 'kim'])
			const primary = await group.primary()
			expect(forwarders[group.data.indexOf(primary)]?.connections).toBeGreaterThan(0)
			// The failover detector (subscribed to +switch-master) and the primary watch
			// (SENTINEL MASTER every second) reached the sentinel too, with its TLS and password.
			const sentinel = group.sentinels[0]
			if (!sentinel) throw new Error('no sentinel')
			const clients = await waitForClients(sentinel)
			expect(clients.some((c) => c.includes('cmd=subscribe') || c.includes('sub=1'))).toBe(true)
			expect(clients.some((c) => c.includes('cmd=sentinel|master'))).toBe(true)
		} finally {
			await app?.close()
			for (const f of forwarders) f.stop()
			await group.stop()
		}
	}, 60_000)
})

/** CLIENT LIST of a sentinel once the service's watch has had time to ask it (bounded). */
function waitForClients(sentinel: RedisServer): Promise<string[]> {
	return pollUntil(
		async () =>
			String(await sentinel.query(['CLIENT', 'LIST']))
				.trim()
				.split('\n'),
		(lines) => lines.some((c) => c.includes('cmd=sentinel|master')),
		3000,
		100,
	)
}
