import { readFileSync } from 'node:fs'
import type { ConnectionOptions } from 'node:tls'
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis'
import type { Config, RedisNatMap, StoreConfig } from '../config'
import { budgetFromEntry, countRedirectedResends, keepConnecting, watchSentinelPrimary } from './ioredis-workarounds'
import type { RedisClient } from './scripts'

/** Every store command settles within about this long, retries and redirections included (docs/contract.md §4: ~1 s). */
export const COMMAND_TIMEOUT_MS = 1000

/** How often the topology is re-read without waiting for an error: Cluster slots, Sentinel's primary. */
export const TOPOLOGY_REFRESH_MS = 1000

type SentinelStore = Extract<StoreConfig, { kind: 'sentinel' }>
type HostPort = { host: string; port: number }

// Reconnect soon after a failover, and every 200 ms while Redis is away: the
// service is back within ~0.2 s of Redis, and a reconnect loop against a
// frozen primary that began before the failover does not delay following it.
const reconnectDelay = (times: number): number => Math.min(50 * 2 ** Math.max(0, times - 1), 200)

// Options of every connection to a data node, whatever the topology.
const CONNECTION = {
	// RESP2: the scripts answer the same either way, and client-side caching
	// (store/tracking.ts) needs it: Redis encodes a FLUSHALL invalidation in
	// the tracked connection's protocol but sends it to the RESP2 invalidation
	// connection, which cannot parse a RESP3 null.
	protocol: 2,
	commandTimeout: COMMAND_TIMEOUT_MS,
	// A primary that hangs (SIGSTOP, paused VM, partition) keeps its socket open
	// and never errors; a second of silence with commands pending drops the
	// socket, and the reconnect asks the topology again where the primary is.
	socketTimeout: COMMAND_TIMEOUT_MS,
	connectTimeout: COMMAND_TIMEOUT_MS,
	// disconnect() ends the socket and waits this long for the peer's FIN, which a
	// frozen peer never sends; ioredis' 2 s default would add 2 s to every failover.
	disconnectTimeout: 100,
	// Commands in flight when a connection drops fail at once instead of waiting
	// for a reconnect, and are never replayed later: the caller already answered
	// 503, so a replayed write would be one it does not know about.
	maxRetriesPerRequest: 0,
	autoResendUnfulfilledCommands: false,
} as const satisfies RedisOptions

/** TLS options with the CA bundle of `REDIS_CA_FILE` (else the system's CAs). */
function tlsOptions(caFile: string | undefined): ConnectionOptions {
	if (caFile === undefined) return {}
	try {
		return { ca: readFileSync(caFile) }
	} catch (err) {
		throw new Error(`REDIS_CA_FILE: cannot read ${caFile}: ${err instanceof Error ? err.message : String(err)}`)
	}
}

/**
 * `REDIS_NAT_MAP` as ioredis' function form. It returns a fresh object per call:
 * ioredis assigns TLS options onto what the map returns, and the config is frozen.
 */
function natMapper(map: RedisNatMap | undefined): ((key: string) => HostPort | null) | undefined {
	if (!map) return undefined
	return (key) => {
		const to = map[key]
		return to ? { host: to.host, port: to.port } : null
	}
}

const copy = (nodes: readonly HostPort[]): HostPort[] => nodes.map((n) => ({ host: n.host, port: n.port }))

const credentials = (store: { username?: string; password?: string }) => ({
	...(store.username !== undefined ? { username: store.username } : {}),
	...(store.password !== undefined ? { password: store.password } : {}),
})

function singleClient(store: Extract<StoreConfig, { kind: 'redis' }>): Redis {
	// URL fields win over these options (ioredis fills only what the URL lacks);
	// config already refuses credentials given in both places.
	const tls = store.url.startsWith('rediss:') ? { tls: tlsOptions(store.caFile) } : {}
	return new Redis(store.url, {
		...CONNECTION,
		...credentials(store),
		...tls,
		enableOfflineQueue: false,
		enableAutoPipelining: true,
		retryStrategy: reconnectDelay,
		lazyConnect: true,
	})
}

function sentinelCredentials(store: SentinelStore) {
	// REDIS_SENTINEL_PASSWORD is the sentinels' own (default-user) password;
	// without it the sentinels take the same credentials as the data nodes.
	if (store.sentinelPassword !== undefined) return { sentinelPassword: store.sentinelPassword }
	return {
		...(store.username !== undefined ? { sentinelUsername: store.username } : {}),
		...(store.password !== undefined ? { sentinelPassword: store.password } : {}),
	}
}

function sentinelClient(store: SentinelStore): Redis {
	const tls = store.tls ? tlsOptions(store.caFile) : undefined
	const natMap = natMapper(store.natMap)
	const client = new Redis({
		...CONNECTION,
		...credentials(store),
		...sentinelCredentials(store),
		sentinels: copy(store.sentinels),
		name: store.name,
		// ioredis checks INFO's role on every (re)connect and moves on when the
		// address the sentinel gave is not a primary (any more).
		role: 'master',
		enableReadyCheck: true,
		// Subscribes to +switch-master on the sentinels and drops the connection
		// the moment they announce a new primary, dead or hung.
		failoverDetector: true,
		// Its subscriptions come back within a second, not ioredis' default minute.
		sentinelReconnectStrategy: () => TOPOLOGY_REFRESH_MS,
		sentinelCommandTimeout: COMMAND_TIMEOUT_MS / 2,
		...(tls ? { tls, sentinelTLS: tls, enableTLSForSentinelMode: true } : {}),
		...(natMap ? { natMap } : {}),
		enableOfflineQueue: false,
		enableAutoPipelining: true,
		retryStrategy: reconnectDelay,
		lazyConnect: true,
	})
	const stopWatching = watchSentinelPrimary(client, {
		name: store.name,
		sentinels: store.sentinels,
		// The sentinels' own credentials, as sentinelCredentials() gives them to ioredis.
		...(store.sentinelPassword !== undefined ? { password: store.sentinelPassword } : credentials(store)),
		...(tls ? { tls } : {}),
		...(natMap ? { natMap } : {}),
		everyMs: TOPOLOGY_REFRESH_MS,
		timeoutMs: COMMAND_TIMEOUT_MS / 2,
	})
	keepConnecting(client, () => {
		stopWatching()
		// quit() ends the connection without telling the connector, so ioredis keeps
		// the failover detector's sentinel connections, reconnecting forever;
		// disconnect() on an ended client releases them.
		client.disconnect()
	})
	return client
}

function clusterClient(store: Extract<StoreConfig, { kind: 'cluster' }>): Cluster {
	const tls = store.tls ? tlsOptions(store.caFile) : undefined
	const natMap = natMapper(store.natMap)
	const options: ClusterOptions = {
		enableOfflineQueue: false,
		enableReadyCheck: true,
		lazyConnect: true,
		scaleReads: 'master',
		// Slots are re-read every second even when no command fails: a primary
		// that hangs produces timeouts, not MOVED, and with
		// cluster-require-full-coverage no the other nodes never answer
		// CLUSTERDOWN for the slots that moved.
		slotsRefreshInterval: TOPOLOGY_REFRESH_MS,
		// A refresh asks the nodes one by one; a hung one costs at most this.
		slotsRefreshTimeout: COMMAND_TIMEOUT_MS / 2,
		retryDelayOnFailover: 100,
		retryDelayOnClusterDown: 100,
		retryDelayOnTryAgain: 100,
		clusterRetryStrategy: reconnectDelay,
		...(natMap ? { natMap } : {}),
		// With TLS, keep host names as given so certificates are checked against them.
		...(tls ? { dnsLookup: (address: string, done: (e: null, a: string) => void) => done(null, address) } : {}),
		redisOptions: { ...CONNECTION, ...credentials(store), ...(tls ? { tls } : {}) },
	}
	const cluster = new Cluster(copy(store.nodes), options)
	budgetFromEntry(cluster, COMMAND_TIMEOUT_MS)
	countRedirectedResends(cluster)
	return cluster
}

/**
 * Builds the Redis client the config asks for (null for the in-memory store),
 * not yet connected; the caller owns and closes it. Throws when `REDIS_CA_FILE`
 * cannot be read.
 */
export function createRedisClient(config: Pick<Config, 'store'>): RedisClient | null {
	const store = config.store
	switch (store.kind) {
		case 'memory':
			return null
		case 'redis':
			return singleClient(store)
		case 'sentinel':
			return sentinelClient(store)
		case 'cluster':
			return clusterClient(store)
	}
}

/**
 * Connects `client` and resolves once it is ready, rejecting (with the last
 * error seen) when it is not within `timeoutMs`. A failed first attempt is not
 * the end: the client retries by itself (e.g. a sentinel that named a
 * replica, a cluster still electing), and only the deadline decides.
 */
export async function waitReady(client: RedisClient, timeoutMs: number): Promise<void> {
	if (client.status === 'ready') return
	let lastError: unknown = null
	const onError = (err: unknown) => {
		lastError = err
	}
	let onReady = () => {}
	let onEnd = () => {}
	client.on('error', onError)
	// A cluster reports what goes wrong with each node as 'node error'.
	client.on('node error', onError)
	try {
		await new Promise<void>((resolve, reject) => {
			const fail = (why: string) => {
				const cause = lastError instanceof Error ? `: ${lastError.message}` : ''
				reject(new Error(`Redis ${why}${cause}`))
			}
			const timer = setTimeout(() => fail(`not ready after ${timeoutMs} ms`), timeoutMs)
			onReady = () => {
				clearTimeout(timer)
				resolve()
			}
			onEnd = () => {
				clearTimeout(timer)
				fail('connection ended before it was ready')
			}
			client.once('ready', onReady)
			client.once('end', onEnd)
			if (client.status === 'wait') client.connect().catch(onError)
		})
	} finally {
		client.off('error', onError)
		client.off('node error', onError)
		client.off('ready', onReady)
		client.off('end', onEnd)
	}
}
