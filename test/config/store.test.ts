import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { type Env, loadConfig } from '../../src/config'
import { expectRefused } from './refused'

// Proves docs/contract.md §2 (issue "Redis HA"): one Redis topology at a time, credentials,
// TLS, CA bundle, sentinel password, NAT map and replica acknowledgements, each
// refused with the variable to fix when it cannot take effect.

const URL_PLAIN = 'redis://127.0.0.1:6379'
const CLUSTER: Env = { REDIS_CLUSTER_NODES: 'n1:7000,n2:7001' }
const SENTINEL: Env = { REDIS_SENTINELS: 's1:26379,s2:26380', REDIS_SENTINEL_NAME: 'mymaster' }
const CLUSTER_NODES = [
	{ host: 'n1', port: 7000 },
	{ host: 'n2', port: 7001 },
]
const SENTINEL_NODES = [
	{ host: 's1', port: 26379 },
	{ host: 's2', port: 26380 },
]
const SECRET = 's'.repeat(32)
const PRODUCTION: Env = { NODE_ENV: 'production', JWT_SECRET: SECRET, API_KEYS: 'k'.repeat(16) }

let dir = ''
let caFile = ''
beforeAll(async () => {
	dir = await mkdtemp(join(tmpdir(), 'dlg-config-'))
	caFile = join(dir, 'ca.pem')
	await writeFile(caFile, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')
})
afterAll(async () => {
	await rm(dir, { recursive: true, force: true })
})

describe('one topology at a time', () => {
	test('REDIS_URL with REDIS_CLUSTER_NODES is refused naming both', () => {
		expectRefused({ REDIS_URL: URL_PLAIN, ...CLUSTER }, 'REDIS_CLUSTER_NODES', 'REDIS_URL')
	})

	test('REDIS_URL with REDIS_SENTINELS is refused naming both', () => {
		expectRefused({ REDIS_URL: URL_PLAIN, ...SENTINEL }, 'REDIS_SENTINELS', 'REDIS_URL')
	})

	test('REDIS_CLUSTER_NODES with REDIS_SENTINELS is refused naming both (the cluster used to win silently)', () => {
		expectRefused({ ...CLUSTER, ...SENTINEL }, 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES')
	})

	test('the conflicts are refused in production too', () => {
		expectRefused({ ...PRODUCTION, REDIS_URL: URL_PLAIN, ...CLUSTER }, 'REDIS_CLUSTER_NODES', 'REDIS_URL')
		expectRefused({ ...PRODUCTION, ...CLUSTER, ...SENTINEL }, 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES')
	})

	test('REDIS_SENTINEL_NAME without REDIS_SENTINELS is refused', () => {
		expectRefused({ REDIS_SENTINEL_NAME: 'mymaster' }, 'REDIS_SENTINEL_NAME', 'REDIS_SENTINELS')
		expectRefused({ REDIS_URL: URL_PLAIN, REDIS_SENTINEL_NAME: 'mymaster' }, 'REDIS_SENTINEL_NAME', 'REDIS_SENTINELS')
		expectRefused({ ...CLUSTER, REDIS_SENTINEL_NAME: 'mymaster' }, 'REDIS_SENTINEL_NAME', 'REDIS_SENTINELS')
	})

	test.each([',', ' , ,'])('a REDIS_CLUSTER_NODES of only commas (%p) is refused, not read as unset', (nodes) => {
		expectRefused({ REDIS_CLUSTER_NODES: nodes }, 'REDIS_CLUSTER_NODES')
	})

	test('an unbracketed IPv6 seed is ambiguous and refused', () => {
		expectRefused({ REDIS_CLUSTER_NODES: '::1:7000' }, 'REDIS_CLUSTER_NODES')
	})

	test('each topology alone loads with exactly its own fields', () => {
		expect(loadConfig({ REDIS_URL: URL_PLAIN }).store).toStrictEqual({ kind: 'redis', url: URL_PLAIN })
		expect(loadConfig(CLUSTER).store).toStrictEqual({ kind: 'cluster', nodes: CLUSTER_NODES })
		expect(loadConfig(SENTINEL).store).toStrictEqual({
			kind: 'sentinel',
			sentinels: SENTINEL_NODES,
			name: 'mymaster',
		})
	})
})

describe('REDIS_USERNAME and REDIS_PASSWORD', () => {
	const ACL = { REDIS_USERNAME: 'app', REDIS_PASSWORD: 'pw-0123' }

	test('go with every topology', () => {
		expect(loadConfig({ REDIS_URL: URL_PLAIN, ...ACL }).store).toStrictEqual({
			kind: 'redis',
			url: URL_PLAIN,
			username: 'app',
			password: 'pw-0123',
		})
		expect(loadConfig({ ...CLUSTER, ...ACL }).store).toStrictEqual({
			kind: 'cluster',
			nodes: CLUSTER_NODES,
			username: 'app',
			password: 'pw-0123',
		})
		expect(loadConfig({ ...SENTINEL, ...ACL }).store).toStrictEqual({
			kind: 'sentinel',
			sentinels: SENTINEL_NODES,
			name: 'mymaster',
			username: 'app',
			password: 'pw-0123',
		})
	})

	test('credentials in the URL stay in the URL and are not copied out', () => {
		const url = 'redis://app:pw-in-url@h:6379/0'
		expect(loadConfig({ REDIS_URL: url }).store).toStrictEqual({ kind: 'redis', url })
	})

	test('a password in both REDIS_URL and REDIS_PASSWORD is refused naming both, printing neither', () => {
		const err = expectRefused(
			{ REDIS_URL: 'redis://:url-password-123@h:6379', REDIS_PASSWORD: 'var-password-456' },
			'REDIS_PASSWORD',
			'REDIS_URL',
		)
		expect(err.message).not.toContain('url-password-123')
		expect(err.message).not.toContain('var-password-456')
	})

	test('a username in both REDIS_URL and REDIS_USERNAME is refused naming both', () => {
		expectRefused({ REDIS_URL: 'redis://app:pw@h:6379', REDIS_USERNAME: 'other' }, 'REDIS_USERNAME', 'REDIS_URL')
	})

	test('the user from the URL and the password from REDIS_PASSWORD (or the reverse) load', () => {
		expect(loadConfig({ REDIS_URL: 'redis://app@h:6379', REDIS_PASSWORD: 'pw' }).store).toStrictEqual({
			kind: 'redis',
			url: 'redis://app@h:6379',
			password: 'pw',
		})
		expect(loadConfig({ REDIS_URL: 'redis://:pw@h:6379', REDIS_USERNAME: 'app' }).store).toStrictEqual({
			kind: 'redis',
			url: 'redis://:pw@h:6379',
			username: 'app',
		})
	})

	test('a username with no password anywhere is refused: Redis would never log in as that user', () => {
		expectRefused({ ...CLUSTER, REDIS_USERNAME: 'app' }, 'REDIS_USERNAME', 'REDIS_PASSWORD')
		expectRefused({ REDIS_URL: URL_PLAIN, REDIS_USERNAME: 'app' }, 'REDIS_USERNAME', 'REDIS_PASSWORD')
	})

	test('without any Redis they are refused rather than ignored', () => {
		expectRefused({ REDIS_PASSWORD: 'pw' }, 'REDIS_PASSWORD', 'REDIS_URL')
		expectRefused({ REDIS_USERNAME: 'app' }, 'REDIS_USERNAME', 'REDIS_URL')
	})

	test('production without Redis names REDIS_URL before the Redis-only settings', () => {
		expectRefused({ ...PRODUCTION, REDIS_PASSWORD: 'pw' }, 'REDIS_URL')
	})
})

describe('REDIS_TLS', () => {
	test('turns TLS on for Cluster and Sentinel nodes', () => {
		expect(loadConfig({ ...CLUSTER, REDIS_TLS: 'true' }).store).toStrictEqual({
			kind: 'cluster',
			nodes: CLUSTER_NODES,
			tls: true,
		})
		expect(loadConfig({ ...SENTINEL, REDIS_TLS: 'yes' }).store).toStrictEqual({
			kind: 'sentinel',
			sentinels: SENTINEL_NODES,
			name: 'mymaster',
			tls: true,
		})
	})

	test('false or unset leaves the tls field out', () => {
		expect(loadConfig({ ...CLUSTER, REDIS_TLS: 'false' }).store).toStrictEqual({
			kind: 'cluster',
			nodes: CLUSTER_NODES,
		})
		expect(loadConfig({ ...CLUSTER, REDIS_TLS: 'false' }).store).not.toHaveProperty('tls')
		expect(loadConfig(CLUSTER).store).not.toHaveProperty('tls')
	})

	test('with a redis:// URL it is refused, pointing at rediss://', () => {
		const err = expectRefused({ REDIS_URL: URL_PLAIN, REDIS_TLS: 'true' }, 'REDIS_TLS', 'REDIS_URL')
		expect(err.message).toContain('rediss://')
	})

	test('with a rediss:// URL it agrees with the URL and loads', () => {
		expect(loadConfig({ REDIS_URL: 'rediss://h:6380', REDIS_TLS: 'true' }).store).toStrictEqual({
			kind: 'redis',
			url: 'rediss://h:6380',
		})
	})

	test('REDIS_TLS=false with a rediss:// URL loads: the URL decides', () => {
		expect(loadConfig({ REDIS_URL: 'rediss://h:6380', REDIS_TLS: 'false' }).store).toStrictEqual({
			kind: 'redis',
			url: 'rediss://h:6380',
		})
	})

	test('"maybe" is refused, and true without any Redis is refused', () => {
		expectRefused({ ...CLUSTER, REDIS_TLS: 'maybe' }, 'REDIS_TLS')
		expectRefused({ REDIS_TLS: 'true' }, 'REDIS_TLS', 'REDIS_URL')
	})
})

describe('REDIS_CA_FILE', () => {
	test('a readable file goes with rediss:// and with REDIS_TLS=true', () => {
		expect(loadConfig({ REDIS_URL: 'rediss://h:6380', REDIS_CA_FILE: caFile }).store).toStrictEqual({
			kind: 'redis',
			url: 'rediss://h:6380',
			caFile,
		})
		expect(loadConfig({ ...CLUSTER, REDIS_TLS: 'true', REDIS_CA_FILE: caFile }).store).toStrictEqual({
			kind: 'cluster',
			nodes: CLUSTER_NODES,
			tls: true,
			caFile,
		})
		expect(loadConfig({ ...SENTINEL, REDIS_TLS: 'on', REDIS_CA_FILE: caFile }).store).toMatchObject({
			kind: 'sentinel',
			tls: true,
			caFile,
		})
	})

	test('a missing file is refused, naming the path', () => {
		const missing = join(dir, 'nope.pem')
		const err = expectRefused({ REDIS_URL: 'rediss://h:6380', REDIS_CA_FILE: missing }, 'REDIS_CA_FILE')
		expect(err.message).toContain(missing)
	})

	test('a directory is refused', () => {
		expectRefused({ REDIS_URL: 'rediss://h:6380', REDIS_CA_FILE: dir }, 'REDIS_CA_FILE')
	})

	// root reads any file whatever its mode, so this can only be shown as another user.
	// A directory cannot be read as a file by any user, root included (chmod 000 would not stop root).
	test('a path that cannot be read as a file is refused', async () => {
		const notAFile = join(dir, 'ca.d')
		await mkdir(notAFile)
		expectRefused({ REDIS_URL: 'rediss://h:6380', REDIS_CA_FILE: notAFile }, 'REDIS_CA_FILE')
	})

	test('without TLS it is refused, saying how to turn TLS on', () => {
		const plain = expectRefused({ REDIS_URL: URL_PLAIN, REDIS_CA_FILE: caFile }, 'REDIS_CA_FILE')
		expect(plain.message).toContain('rediss://')
		expectRefused({ ...CLUSTER, REDIS_CA_FILE: caFile }, 'REDIS_CA_FILE', 'REDIS_TLS')
		expectRefused({ ...SENTINEL, REDIS_TLS: 'false', REDIS_CA_FILE: caFile }, 'REDIS_CA_FILE', 'REDIS_TLS')
		expectRefused({ REDIS_CA_FILE: caFile }, 'REDIS_CA_FILE')
	})
})

describe('REDIS_SENTINEL_PASSWORD', () => {
	test('goes with sentinels, beside the nodes’ own password', () => {
		expect(
			loadConfig({ ...SENTINEL, REDIS_PASSWORD: 'node-pw', REDIS_SENTINEL_PASSWORD: 'sentinel-pw' }).store,
		).toStrictEqual({
			kind: 'sentinel',
			sentinels: SENTINEL_NODES,
			name: 'mymaster',
			password: 'node-pw',
			sentinelPassword: 'sentinel-pw',
		})
	})

	test('without REDIS_SENTINELS it is refused, without printing it', () => {
		const err = expectRefused(
			{ ...CLUSTER, REDIS_SENTINEL_PASSWORD: 'sentinel-pw-xyz' },
			'REDIS_SENTINEL_PASSWORD',
			'REDIS_SENTINELS',
		)
		expect(err.message).not.toContain('sentinel-pw-xyz')
		expectRefused({ REDIS_URL: URL_PLAIN, REDIS_SENTINEL_PASSWORD: 'pw' }, 'REDIS_SENTINEL_PASSWORD')
		expectRefused({ REDIS_SENTINEL_PASSWORD: 'pw' }, 'REDIS_SENTINEL_PASSWORD')
	})
})

describe('REDIS_NAT_MAP', () => {
	test('maps announced addresses to reachable ones for a cluster, IPv6 in brackets', () => {
		const config = loadConfig({
			...CLUSTER,
			REDIS_NAT_MAP: '10.0.0.5:6379=127.0.0.1:17000, [fd00::7]:6379=[::1]:17001,redis-2:6379=localhost:17002',
		})
		expect(config.store).toStrictEqual({
			kind: 'cluster',
			nodes: CLUSTER_NODES,
			natMap: {
				'10.0.0.5:6379': { host: '127.0.0.1', port: 17_000 },
				'fd00::7:6379': { host: '::1', port: 17_001 },
				'redis-2:6379': { host: 'localhost', port: 17_002 },
			},
		})
	})

	test('goes with sentinels too', () => {
		expect(loadConfig({ ...SENTINEL, REDIS_NAT_MAP: 'a:1=b:2' }).store).toMatchObject({
			kind: 'sentinel',
			natMap: { 'a:1': { host: 'b', port: 2 } },
		})
	})

	test('the map is frozen like the rest', () => {
		const store = loadConfig({ ...CLUSTER, REDIS_NAT_MAP: 'a:1=b:2' }).store
		if (store.kind !== 'cluster') throw new Error(`expected a cluster, got ${store.kind}`)
		expect(Object.isFrozen(store.natMap)).toBe(true)
		expect(Object.isFrozen(store.natMap?.['a:1'])).toBe(true)
	})

	test('with a plain REDIS_URL it is refused naming both', () => {
		expectRefused({ REDIS_URL: URL_PLAIN, REDIS_NAT_MAP: 'a:1=b:2' }, 'REDIS_NAT_MAP', 'REDIS_URL')
	})

	test('without any Redis it is refused', () => {
		expectRefused({ REDIS_NAT_MAP: 'a:1=b:2' }, 'REDIS_NAT_MAP')
	})

	test.each([
		'a:1',
		'a:1=',
		'=b:2',
		'a:1=b',
		'a=b:2',
		'a:1=b:0',
		'a:1=b:65536',
		'a:x=b:2',
		'a:1=b:2=c:3',
		'::1:7000=b:2',
		'a:1=::1:7000',
		'a b:1=c:2',
		'a:1=b:2,a:1=c:3',
		',',
	])('%p is refused', (map) => {
		expectRefused({ ...CLUSTER, REDIS_NAT_MAP: map }, 'REDIS_NAT_MAP')
	})

	test('any well-formed list of entries is read back exactly', () => {
		const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/)
		const host = fc.oneof(
			fc.array(label, { minLength: 1, maxLength: 3 }).map((labels) => labels.join('.')),
			fc.ipV4(),
			fc.ipV6().map((ip) => `[${ip}]`),
		)
		const address = fc.record({ host, port: fc.integer({ min: 1, max: 65_535 }) })
		const unwrap = (h: string) => h.replace(/^\[(.*)\]$/, '$1')
		fc.assert(
			fc.property(
				fc.uniqueArray(fc.tuple(address, address), {
					minLength: 1,
					maxLength: 5,
					selector: ([from]) => `${unwrap(from.host)}:${from.port}`,
				}),
				(entries) => {
					const raw = entries.map(([a, b]) => `${a.host}:${a.port}=${b.host}:${b.port}`).join(',')
					const store = loadConfig({ ...CLUSTER, REDIS_NAT_MAP: raw }).store
					const expected = Object.fromEntries(
						entries.map(([a, b]) => [`${unwrap(a.host)}:${a.port}`, { host: unwrap(b.host), port: b.port }]),
					)
					expect(store).toMatchObject({ kind: 'cluster', natMap: expected })
				},
			),
		)
	})
})

describe('REDIS_MIN_REPLICAS_ACK', () => {
	test('is 0 by default, also with the in-memory store', () => {
		expect(loadConfig({}).redisMinReplicasAck).toBe(0)
		expect(loadConfig({ REDIS_MIN_REPLICAS_ACK: '0' }).redisMinReplicasAck).toBe(0)
	})

	test('takes 1 to 16 with Redis', () => {
		expect(loadConfig({ REDIS_URL: URL_PLAIN, REDIS_MIN_REPLICAS_ACK: '1' }).redisMinReplicasAck).toBe(1)
		expect(loadConfig({ ...CLUSTER, REDIS_MIN_REPLICAS_ACK: ' 16 ' }).redisMinReplicasAck).toBe(16)
		expect(loadConfig({ ...SENTINEL, REDIS_MIN_REPLICAS_ACK: '2' }).redisMinReplicasAck).toBe(2)
	})

	test.each(['17', '-1', 'one', '1.5', '1e1', '+1', '0x1'])('%p is refused', (value) => {
		expectRefused({ REDIS_URL: URL_PLAIN, REDIS_MIN_REPLICAS_ACK: value }, 'REDIS_MIN_REPLICAS_ACK')
	})

	test('more than 0 with the in-memory store is refused: there are no replicas to wait for', () => {
		expectRefused({ REDIS_MIN_REPLICAS_ACK: '1' }, 'REDIS_MIN_REPLICAS_ACK', 'REDIS_URL')
	})
})

describe('loadConfig in production: Redis', () => {
	test('without REDIS_URL it refuses to start', () => {
		expectRefused({ ...PRODUCTION, REDIS_URL: undefined }, 'REDIS_URL')
		expectRefused({ NODE_ENV: 'production', JWT_SECRET: SECRET, ISSUE_AUTH: 'none' }, 'REDIS_URL')
	})

	test('Redis Cluster seeds stand in for REDIS_URL', () => {
		const config = loadConfig({ ...PRODUCTION, REDIS_URL: undefined, REDIS_CLUSTER_NODES: 'n1:7000, n2:7001' })
		expect(config.store).toEqual({
			kind: 'cluster',
			nodes: [
				{ host: 'n1', port: 7000 },
				{ host: 'n2', port: 7001 },
			],
		})
	})

	test('Redis Sentinel stands in for REDIS_URL', () => {
		const config = loadConfig({
			...PRODUCTION,
			REDIS_URL: undefined,
			REDIS_SENTINELS: 's1:26379,s2:26380',
			REDIS_SENTINEL_NAME: 'mymaster',
		})
		expect(config.store).toEqual({
			kind: 'sentinel',
			sentinels: [
				{ host: 's1', port: 26379 },
				{ host: 's2', port: 26380 },
			],
			name: 'mymaster',
		})
	})
})

describe('loadConfig: Redis', () => {
	test.each(['http://x', 'https://redis.example.com', 'not a url', 'localhost:6379'])(
		'REDIS_URL %p is refused',
		(redisUrl) => {
			expectRefused({ REDIS_URL: redisUrl }, 'REDIS_URL')
		},
	)

	test('rediss:// is accepted', () => {
		expect(loadConfig({ REDIS_URL: 'rediss://user:pw@redis.example.com:6380/2' }).store).toEqual({
			kind: 'redis',
			url: 'rediss://user:pw@redis.example.com:6380/2',
		})
	})

	test('REDIS_SENTINELS without REDIS_SENTINEL_NAME is refused', () => {
		expectRefused({ REDIS_SENTINELS: 's1:26379' }, 'REDIS_SENTINEL_NAME')
	})

	test.each(['a:b', 'a', ':6379', 'a:0', 'a:65536', 'a:123456', 'n1:7000,bad'])(
		'REDIS_CLUSTER_NODES %p is refused',
		(nodes) => {
			expectRefused({ REDIS_CLUSTER_NODES: nodes }, 'REDIS_CLUSTER_NODES')
		},
	)

	test('a bad sentinel address is refused', () => {
		expectRefused({ REDIS_SENTINELS: 's1:x', REDIS_SENTINEL_NAME: 'mymaster' }, 'REDIS_SENTINELS')
	})

	test('an IPv6 cluster seed in brackets is unwrapped', () => {
		expect(loadConfig({ REDIS_CLUSTER_NODES: '[::1]:7000' }).store).toEqual({
			kind: 'cluster',
			nodes: [{ host: '::1', port: 7000 }],
		})
	})

	test('REDIS_PASSWORD goes with a cluster', () => {
		expect(loadConfig({ REDIS_CLUSTER_NODES: 'n1:7000', REDIS_PASSWORD: 'pw' }).store).toEqual({
			kind: 'cluster',
			nodes: [{ host: 'n1', port: 7000 }],
			password: 'pw',
		})
	})
})
