import type { ChainableCommander } from 'ioredis'
import type { Clock } from '../clock'
import { StoreUnavailableError } from '../errors'
import { COMMAND_TIMEOUT_MS } from './connect'
import { type EventEntry, newEventIdBase, type StoreEvents } from './events'
import { redirectedResends } from './ioredis-workarounds'
import { type Reply, replyOf } from './redis-replies'
import { type RedisClient, type Script, toInt } from './scripts'
import type { EventContext } from './types'

/** Whose token a script's events name, and the request they came from. */
export interface EventSubject {
	readonly userId: string
	readonly jti: string
	readonly context?: EventContext | undefined
}

/** How the Redis store reaches Redis: every failure is a `StoreUnavailableError`. */
export interface ScriptRunner {
	/** Runs `op`; any failure of it becomes `StoreUnavailableError`. */
	guard<T>(op: () => Promise<T>): Promise<T>
	/**
	 * Runs `script` with the event arguments every script takes first, after
	 * `WAIT` for the replicas when it writes; hands the events it returned
	 * (Cluster) to the writer. Throws `StoreUnavailableError`.
	 */
	run(
		script: Script,
		name: string,
		subject: EventSubject,
		keys: readonly string[],
		args: readonly (string | number)[],
		options?: { readonly write: boolean; readonly via?: Script },
	): Promise<Reply>
	/**
	 * After a take that charged: WAIT on the connection that ran it, reached
	 * through a keyed no-op (on Cluster, the node owning the key), within what
	 * the take (begun at `takeStartedMs`, `performance.now()`) left of the
	 * store's second: a slow take during a failover leaves WAIT only the rest. Throws `StoreUnavailableError`.
	 */
	replicated(via: RedisClient, key: string, takeStartedMs: number): Promise<void>
}

/** Options of the runner: the replica acknowledgement and where events go. */
export interface ScriptRunnerOptions {
	readonly clock: Clock
	/** Writes return only once this many replicas acknowledged them (`WAIT`); 0 = off. */
	readonly minReplicasAck: number
	readonly replicaAckTimeoutMs: number
	readonly events: StoreEvents
}

/** `work`, or a rejection once `ms` passed without it settling (what it does later is ignored). */
function within<T>(work: Promise<T>, ms: number): Promise<T> {
	let timer: ReturnType<typeof setTimeout> | undefined
	const late = new Promise<never>((_, reject) => {
		timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
	})
	return Promise.race([work, late]).finally(() => clearTimeout(timer))
}

/** Builds the runner over a ready `client`, which it never closes. */
export function createScriptRunner(client: RedisClient, opts: ScriptRunnerOptions): ScriptRunner {
	const { clock, events, minReplicasAck: ack, replicaAckTimeoutMs: ackTimeoutMs } = opts

	async function guard<T>(op: () => Promise<T>): Promise<T> {
		try {
			return await op()
		} catch (err) {
			throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError(err)
		}
	}

	// Runs `pipeline` followed by WAIT on the same connection (and, on Cluster,
	// the same node): resolves with the first command's reply once `ack`
	// replicas have everything written before it, else rejects. Within the
	// command timeout as a whole: ioredis times out each command once a node
	// has it, but a Cluster pipeline refused during a failover is retried with no
	// deadline (issuing answered 503 only after 3.0-3.7 s with a primary frozen;
	// test/topology: "failover under load, REDIS_MIN_REPLICAS_ACK=1").
	// On Cluster, a command of the pipeline resent alone after a redirection (ioredis-workarounds.ts)
	// may have left its WAIT behind on another node: then nothing is known of the write's replicas.
	function acknowledged(
		pipeline: ChainableCommander,
		via: RedisClient,
		budgetMs = COMMAND_TIMEOUT_MS,
	): Promise<unknown> {
		return guard(async () => {
			if (budgetMs < 1) throw new Error('no time was left to wait for the replicas')
			const resendsBefore = redirectedResends(via)
			// WAIT's own timeout must stay above 0, which would mean forever.
			const waitMs = Math.max(1, Math.min(ackTimeoutMs, Math.floor(budgetMs)))
			const replies = (await within(pipeline.wait(ack, waitMs).exec(), budgetMs)) ?? []
			for (const [err] of replies) if (err) throw err
			if (redirectedResends(via) !== resendsBefore)
				throw new Error('a command was redirected while the write waited for its replicas')
			const acked = toInt(replies.at(-1)?.[1] ?? 0)
			if (!(acked >= ack)) throw new Error(`only ${acked} of ${ack} replicas acknowledged the write`)
			return replies[0]?.[1]
		})
	}

	// The event arguments every script takes first (ARGV[1..7]) and the stream key it writes to, if inline.
	function withEvents(subject: EventSubject, keys: readonly string[]) {
		const mode = events.mode
		const args = [
			mode,
			mode === 'off' ? '' : newEventIdBase(),
			mode === 'off' ? '' : new Date(clock()).toISOString(),
			mode === 'off' ? 0 : events.maxLen,
			subject.context?.requestId ?? '',
			subject.userId,
			subject.jti,
		]
		return { keys: mode === 'inline' ? [...keys, events.key] : keys, args }
	}

	function handOver(reply: Reply): void {
		if (reply.events.length === 0 || events.mode === 'off') return
		if (events.mode === 'inline') {
			events.written(reply.events.map(String))
			return
		}
		const entries: EventEntry[] = []
		for (let i = 0; i + 3 < reply.events.length; i += 4)
			entries.push({
				id: String(reply.events[i]),
				type: String(reply.events[i + 1]),
				timestamp: String(reply.events[i + 2]),
				data: String(reply.events[i + 3]),
			})
		events.write(entries)
	}

	return {
		guard,
		async run(script, name, subject, keys, args, options = { write: true }) {
			const prepared = withEvents(subject, keys)
			const fullArgs = [...prepared.args, ...args]
			const raw =
				options.write && ack > 0
					? await acknowledged(script.queue(client.pipeline(), prepared.keys, fullArgs), client)
					: await (options.via ?? script).run(prepared.keys, fullArgs)
			const reply = replyOf(raw, name)
			handOver(reply)
			return reply
		},
		async replicated(via, key, takeStartedMs) {
			if (ack > 0)
				await acknowledged(via.pipeline().exists(key), via, COMMAND_TIMEOUT_MS - (performance.now() - takeStartedMs))
		},
	}
}
