import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import type { ConnectionOptions } from 'node:tls'
import { type Cluster, Redis } from 'ioredis'

// Behaviour of ioredis (6.1.0, the version in bun.lock) that the store cannot
// live with, and what it does instead. Each workaround names the upstream
// issue (or says there is none) and the test that goes red without it; drop
// one only once that test passes without it on a newer ioredis.

type HostPort = { host: string; port: number }

/** How soon a client that ioredis ended is connected again (the first step of connect.ts's backoff). */
const RECONNECT_AFTER_END_MS = 50

/**
 * Keeps a Sentinel client connecting after ioredis ended it on its own.
 *
 * In ioredis 6.0.0, `Redis#connect` sets the status to `end` for good when the
 * connector's connect rejects, and the Sentinel failover detector
 * (`failoverDetector: true`) disconnects the connector when `+switch-master`
 * arrives, also while a reconnect is still asking the sentinels for the
 * primary: that attempt rejects with "Connection is closed." and the client
 * never reconnects, so an instance whose reconnect met a failover answered
 * 503 until restarted. No upstream issue names this mechanism; redis/ioredis#1683
 * reports the symptom ("Connection is closed." for good on some instances
 * after a Sentinel failover) without a cause, closed as stale.
 *
 * Second, `quit()` ends the client without telling the connector, so the
 * failover detector's sentinel connections stay open, reconnecting forever
 * (redis/ioredis#1362; fixed upstream by redis/ioredis#2198, not in 6.0.0):
 * `closed` runs once when `quit()` or `disconnect()` ended the client, for the
 * caller to `disconnect()` it, which releases them.
 *
 * Unless `quit()` or `disconnect()` ended it, `client` connects again.
 * Pinned by test/topology/sentinel.test.ts: "a failover announced while a
 * reconnect is still asking the sentinels does not end the client for good"
 * (scripted sentinel) and "quit() leaves no connection to the sentinels behind".
 */
export function keepConnecting(client: Redis, closed: () => void = () => {}): void {
	let closing = false
	const quit = client.quit.bind(client)
	const disconnect = client.disconnect.bind(client)
	client.quit = ((...args: Parameters<Redis['quit']>) => {
		closing = true
		return quit(...args)
	}) as Redis['quit']
	client.disconnect = (reconnect = false) => {
		if (!reconnect) closing = true
		disconnect(reconnect)
	}
	let finished = false
	client.on('end', () => {
		if (closing) {
			if (!finished) {
				finished = true
				closed()
			}
			return
		}
		setTimeout(() => {
			if (!closing && client.status === 'end') client.connect().catch(() => {})
		}, RECONNECT_AFTER_END_MS)
	})
}

/**
 * Makes a Cluster command's `commandTimeout` cover its whole life: arms it
 * when the command enters the cluster, and refreshes the slots when it fires.
 *
 * ioredis arms `commandTimeout` only when a command reaches a node connection
 * (`Redis#sendCommand`; redis/ioredis#1604, open, reports the cluster side
 * never timing out). A command the cluster refuses before that, because the
 * node owning its slot is still in its handshake (a node loading its dataset,
 * a reconnect to a new primary) and the offline queue is off, is retried every
 * `retryDelayOnFailover` (100 ms) up to `maxRedirections` (16) with no timeout
 * at all: about 1.6 s instead of 1 s. A primary that hangs answers nothing that
 * would trigger a slot refresh, hence the refresh on timeout (it only hastens
 * what `slotsRefreshInterval` does within a second; no test isolates it).
 *
 * Pinned by test/ioredis-workarounds.test.ts: "commands to a node stuck in its
 * handshake fail after ~1 s, not after ioredis' 16 retries (~1.6 s)" (a
 * scripted one-shard cluster; 1.0 s with it, 1.65-1.75 s without).
 */
export function budgetFromEntry(cluster: Cluster, timeoutMs: number): void {
	const send = cluster.sendCommand.bind(cluster)
	cluster.sendCommand = (...args: Parameters<Cluster['sendCommand']>) => {
		const [command] = args
		command.setTimeout(timeoutMs)
		command.promise.catch((err: unknown) => {
			if (err instanceof Error && err.message === 'Command timed out') cluster.refreshSlotsCache()
		})
		return send(...args)
	}
}

/** Per Cluster client: how many pipelined commands it resent on their own after a redirection. */
const resends = new WeakMap<object, { n: number }>()

/**
 * Counts the commands of a pipeline that `cluster` resends on their own
 * after a redirection, so a write and its `WAIT` can tell they were parted.
 *
 * ioredis 6.1.0 takes a pipelined command whose own reply is a redirection
 * (MOVED, ASK, TRYAGAIN) out of its batch and resends it alone through the
 * cluster (`resendOnRedirection` in Pipeline.js; what redis/ioredis#2075
 * asked for). The store pipelines a write with `WAIT` so that WAIT runs on the
 * connection that wrote (redis-runner.ts): a write redirected during a
 * failover ran on the new primary while its WAIT counted the replicas of the
 * node it left, and the write was acknowledged with no replica behind it
 * (seen as writes answered 200 within 40 ms of a failover whose new primary
 * had no replica, `REDIS_MIN_REPLICAS_ACK=1`). The runner reads this count
 * around each acknowledged write and answers 503 when it moved.
 *
 * Pinned by test/topology/cluster.test.ts: "failover under load,
 * REDIS_MIN_REPLICAS_ACK=1" (no write acknowledged while the failed primary's
 * only replica has taken over and no other is back).
 */
export function countRedirectedResends(cluster: Cluster): void {
	const count = { n: 0 }
	resends.set(cluster, count)
	const send = cluster.sendCommand.bind(cluster)
	cluster.sendCommand = (...args: Parameters<Cluster['sendCommand']>) => {
		// Set by resendOnRedirection just before it hands the command back to the cluster.
		if ((args[0] as { redirection?: unknown }).redirection !== undefined) count.n++
		return send(...args)
	}
}

/** Pipelined commands `client` has resent alone after a redirection so far (always 0 but for a counted Cluster). */
export const redirectedResends = (client: object): number => resends.get(client)?.n ?? 0

/** One sentinel's view of the primary. */
interface PrimaryView {
	readonly host: string
	readonly port: number
	readonly epoch: number
}

function parsePrimaryView(reply: unknown): PrimaryView | null {
	if (!Array.isArray(reply)) return null
	const fields = new Map<string, string>()
	for (let i = 0; i + 1 < reply.length; i += 2) fields.set(String(reply[i]), String(reply[i + 1]))
	const host = fields.get('ip')
	const port = Number(fields.get('port'))
	const epoch = Number(fields.get('config-epoch'))
	if (!host || !Number.isInteger(port) || !Number.isInteger(epoch)) return null
	return { host, port, epoch }
}

const plainIp = (address: string | undefined): string => (address ?? '').replace(/^::ffff:/, '')

/** True when `socket` is connected to `target` (a host name is resolved first). */
async function connectedTo(
	socket: { remoteAddress?: string | undefined; remotePort?: number | undefined },
	target: HostPort,
): Promise<boolean> {
	if (socket.remotePort !== target.port) return false
	const peer = plainIp(socket.remoteAddress)
	if (isIP(target.host)) return plainIp(target.host) === peer
	const addresses = await lookup(target.host, { all: true })
	return addresses.some((a) => plainIp(a.address) === peer)
}

/** Where the sentinels are and how to reach them, for `watchSentinelPrimary`. */
export interface SentinelWatch {
	/** The primary's name at the sentinels. */
	readonly name: string
	readonly sentinels: readonly HostPort[]
	/** Credentials of the sentinels themselves. */
	readonly username?: string
	readonly password?: string
	readonly tls?: ConnectionOptions
	/** Announced address → reachable one (`REDIS_NAT_MAP`). */
	readonly natMap?: (key: string) => HostPort | null
	/** How often to ask. */
	readonly everyMs: number
	/** How long one sentinel may take to answer. */
	readonly timeoutMs: number
}

/**
 * Asks every sentinel for the primary every `everyMs` (and on each ready),
 * trusts the highest config epoch, and drops `client`'s connection when it is
 * to another node, so the reconnect asks the sentinels again. Returns a
 * function that stops watching.
 *
 * ioredis learns of a new primary only when its connection drops or, with
 * `failoverDetector`, from a `+switch-master` message (redis/ioredis#1314,
 * fixed by redis/ioredis#1328). A message missed (a sentinel connection that
 * was down, a detector being re-subscribed during a reconnect) or a frozen old
 * primary that resumes still believing it is primary leaves the client writing
 * to a demoted node. No ioredis issue covers it; the Sentinel client guidance
 * that clients should check with the sentinels periodically is
 * redis/redis#1083 (open); redis/ioredis#1059 (open) is a related report.
 *
 * Pinned by test/topology/sentinel.test.ts: "when the sentinels name a new
 * primary without announcing it, writes move there within ~2 s".
 */
export function watchSentinelPrimary(client: Redis, watch: SentinelWatch): () => void {
	const watchers = watch.sentinels.map(
		(s) =>
			new Redis({
				host: s.host,
				port: s.port,
				...(watch.username !== undefined ? { username: watch.username } : {}),
				...(watch.password !== undefined ? { password: watch.password } : {}),
				...(watch.tls ? { tls: watch.tls } : {}),
				connectTimeout: watch.timeoutMs,
				commandTimeout: watch.timeoutMs,
				disconnectTimeout: 100,
				maxRetriesPerRequest: 0,
				enableReadyCheck: false,
				retryStrategy: () => watch.everyMs,
				lazyConnect: true,
			}),
	)
	for (const w of watchers) w.on('error', () => {}) // unreachable sentinels are normal; the others answer
	let checking = false
	const check = async () => {
		if (checking || client.status !== 'ready') return
		checking = true
		try {
			const views = await Promise.all(
				watchers.map((w) => w.call('SENTINEL', 'MASTER', watch.name).then(parsePrimaryView, () => null)),
			)
			let best: PrimaryView | null = null
			for (const v of views) if (v && (!best || v.epoch > best.epoch)) best = v
			if (!best || client.status !== 'ready') return
			const target = watch.natMap?.(`${best.host}:${best.port}`) ?? { host: best.host, port: best.port }
			if (await connectedTo(client.stream, target)) return
			// Reported like any connection error (emitting 'error' with no listener would throw).
			if (client.listenerCount('error') > 0)
				client.emit('error', new Error(`sentinels now name ${target.host}:${target.port} as primary; reconnecting`))
			client.disconnect(true)
		} catch {
			// A lookup failure: the next round tries again.
		} finally {
			checking = false
		}
	}
	const timer = setInterval(check, watch.everyMs)
	timer.unref()
	client.on('ready', check)
	return () => {
		clearInterval(timer)
		for (const w of watchers) w.disconnect()
	}
}
