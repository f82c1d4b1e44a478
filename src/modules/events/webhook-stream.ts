import type { Cluster, Redis } from 'ioredis'

/** One stream entry as Redis returned it; `fields` is null when the stream trimmed the entry away. */
export interface StreamEntry {
	readonly streamId: string
	readonly fields: readonly string[] | null
}

/** Entries taken over from other consumers, and the ids Redis found trimmed (and dropped from the pending list). */
export interface Claimed {
	readonly entries: readonly StreamEntry[]
	readonly trimmed: number
}

/** What one endpoint still owes, read from its consumer group. */
export interface GroupBacklog {
	/** Read by some consumer, not yet acknowledged. */
	readonly pending: number
	/** Not yet read by any consumer (a lower bound of 1000 when Redis cannot count them). */
	readonly undelivered: number
	/** Stream id (ms-seq) of the oldest entry not yet acknowledged, or null when there is none. */
	readonly oldestId: string | null
}

/** The stream commands of one endpoint's consumer group, as one consumer. Every method throws the Redis error. */
export interface GroupStream {
	readonly group: string
	/**
	 * Creates the group if it is missing: at `$` the first time (a new endpoint
	 * starts with what is written from now on, not the stream's history), and
	 * after it vanished (NOGROUP: the stream was deleted or Redis lost it) at
	 * the last id this consumer knew the group had reached, so nothing written
	 * in between is skipped.
	 */
	ensureGroup(): Promise<void>
	/** Up to `count` entries no consumer has read yet (`>`), now pending for this consumer. */
	readNew(count: number): Promise<StreamEntry[]>
	/** Up to `count` entries already pending for this consumer (after a restart under the same name). */
	readOwn(count: number): Promise<StreamEntry[]>
	/** Takes over up to `count` entries idle (unacknowledged, untouched) for at least `minIdleMs`, from any consumer. */
	claim(count: number, minIdleMs: number): Promise<Claimed>
	ack(ids: readonly string[]): Promise<void>
	/** Resets the idle time of those of `ids` this consumer still owns; returns how many. */
	touch(ids: readonly string[]): Promise<number>
	/** Appends the entry's fields plus `endpoint` and `error` to the dead-letter stream (trimmed to about `maxLen`). */
	deadLetter(fields: readonly string[], endpoint: string, error: string, maxLen: number): Promise<void>
	backlog(): Promise<GroupBacklog>
	/** Deletes other consumers with nothing pending that have been idle `idleMs` (instances long gone); returns their names. */
	pruneConsumers(idleMs: number): Promise<string[]>
}

/** Whether `err` is Redis saying the group (or its stream) does not exist. */
export const isNoGroup = (err: unknown): boolean => err instanceof Error && err.message.startsWith('NOGROUP')

const isBusyGroup = (err: unknown): boolean => err instanceof Error && err.message.startsWith('BUSYGROUP')

/** The milliseconds part of a stream id. */
export const streamIdMs = (id: string): number => Number(id.slice(0, id.indexOf('-')))

/** Orders stream ids (`ms-seq`) numerically. */
export function compareStreamIds(a: string, b: string): number {
	const [am = 0n, as = 0n] = a.split('-').map(BigInt)
	const [bm = 0n, bs = 0n] = b.split('-').map(BigInt)
	if (am !== bm) return am < bm ? -1 : 1
	return as === bs ? 0 : as < bs ? -1 : 1
}

// Resets the idle time of the entries still pending for ARGV[2], so other
// instances' takeover (XAUTOCLAIM, min-idle above the attempt timeout) leaves
// an entry alone while its owner waits out a long backoff. Checking the owner
// in the same step keeps it from taking back an entry another instance has
// meanwhile claimed. JUSTID: the delivery count stays as it is.
const TOUCH = `
local touched = 0
for i = 3, #ARGV do
	local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
	if pending[1] and pending[1][2] == ARGV[2] then
		redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
		touched = touched + 1
	end
end
return touched
`

// ---- reply parsing (RESP2 shapes; ioredis 6 gives the same under RESP3 by default) ----

function list(value: unknown, what: string): unknown[] {
	if (!Array.isArray(value)) throw new Error(`unexpected reply to ${what}`)
	return value
}

function text(value: unknown, what: string): string {
	if (typeof value === 'string') return value
	if (Buffer.isBuffer(value)) return value.toString()
	throw new Error(`unexpected reply to ${what}`)
}

function int(value: unknown): number | null {
	if (typeof value === 'number') return value
	if (typeof value === 'string' && value !== '') return Number(value)
	return null
}

function entries(value: unknown, what: string): StreamEntry[] {
	return list(value, what).map((raw) => {
		const [id, fields] = list(raw, what)
		return {
			streamId: text(id, what),
			fields: fields === null ? null : list(fields, what).map((f) => text(f, what)),
		}
	})
}

/** The entries of the one stream in an XREADGROUP reply (null when nothing came). */
function readReply(value: unknown): StreamEntry[] {
	if (value === null) return []
	const [stream] = list(value, 'XREADGROUP')
	const [, got] = list(stream, 'XREADGROUP')
	return entries(got, 'XREADGROUP')
}

/** A flat `[name, value, …]` reply as a record. */
function record(value: unknown, what: string): Record<string, unknown> {
	const flat = list(value, what)
	const out: Record<string, unknown> = {}
	for (let i = 0; i + 1 < flat.length; i += 2) out[text(flat[i], what)] = flat[i + 1]
	return out
}

/** Commands of consumer `consumer` in group `group` of `streamKey`, dead letters going to `deadLetterKey`. */
export function createGroupStream(
	redis: Redis | Cluster,
	keys: { readonly streamKey: string; readonly deadLetterKey: string },
	group: string,
	consumer: string,
): GroupStream {
	const { streamKey, deadLetterKey } = keys
	// The highest id this group was known to have reached; where it is re-created after NOGROUP.
	let floor: string | null = null
	let claimCursor = '0-0'
	const raise = (id: string) => {
		if (floor === null || compareStreamIds(id, floor) > 0) floor = id
	}

	async function groupInfo(): Promise<Record<string, unknown> | null> {
		const groups = list(await redis.call('XINFO', 'GROUPS', streamKey), 'XINFO GROUPS')
		for (const g of groups) {
			const info = record(g, 'XINFO GROUPS')
			if (info.name === group) return info
		}
		return null
	}

	return {
		group,
		async ensureGroup() {
			try {
				await redis.call('XGROUP', 'CREATE', streamKey, group, floor ?? '$', 'MKSTREAM')
			} catch (err) {
				if (!isBusyGroup(err)) throw err
			}
			const info = await groupInfo()
			const reached = info?.['last-delivered-id']
			if (typeof reached === 'string') raise(reached)
		},
		async readNew(count) {
			const reply = await redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', streamKey, '>')
			const got = readReply(reply)
			const last = got.at(-1)
			if (last) raise(last.streamId)
			return got
		},
		async readOwn(count) {
			const reply = await redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', streamKey, '0')
			return readReply(reply)
		},
		async claim(count, minIdleMs) {
			const reply = list(
				await redis.call('XAUTOCLAIM', streamKey, group, consumer, minIdleMs, claimCursor, 'COUNT', count),
				'XAUTOCLAIM',
			)
			claimCursor = text(reply[0], 'XAUTOCLAIM')
			const got = entries(reply[1], 'XAUTOCLAIM')
			// Redis < 7 lists a trimmed entry with null fields; 7 names it in a third element.
			const deleted = reply[2] === undefined ? 0 : list(reply[2], 'XAUTOCLAIM').length
			return { entries: got, trimmed: deleted }
		},
		async ack(ids) {
			if (ids.length > 0) await redis.call('XACK', streamKey, group, ...ids)
		},
		async touch(ids) {
			if (ids.length === 0) return 0
			return int(await redis.eval(TOUCH, 1, streamKey, group, consumer, ...ids)) ?? 0
		},
		async deadLetter(fields, endpoint, error, maxLen) {
			await redis.call(
				'XADD',
				deadLetterKey,
				'MAXLEN',
				'~',
				maxLen,
				'*',
				...fields,
				'endpoint',
				endpoint,
				'error',
				error,
			)
		},
		async backlog() {
			const info = await groupInfo()
			if (info === null) return { pending: 0, undelivered: 0, oldestId: null }
			const pending = int(info.pending) ?? 0
			const lastDelivered = text(info['last-delivered-id'], 'XINFO GROUPS')
			let undelivered = int(info.lag)
			let oldestId: string | null = null
			if (pending > 0) {
				const summary = list(await redis.call('XPENDING', streamKey, group), 'XPENDING')
				oldestId = summary[1] === null ? null : text(summary[1], 'XPENDING')
			}
			if (undelivered === null || (undelivered > 0 && oldestId === null)) {
				// `lag` is null when Redis cannot tell (entries deleted in the middle): count, up to a bound.
				const bound = undelivered === null ? 1000 : 1
				const next = entries(await redis.call('XRANGE', streamKey, `(${lastDelivered}`, '+', 'COUNT', bound), 'XRANGE')
				undelivered ??= next.length
				oldestId ??= next[0]?.streamId ?? null
			}
			return { pending, undelivered, oldestId }
		},
		async pruneConsumers(idleMs) {
			const consumers = list(await redis.call('XINFO', 'CONSUMERS', streamKey, group), 'XINFO CONSUMERS')
			const pruned: string[] = []
			for (const c of consumers) {
				const info = record(c, 'XINFO CONSUMERS')
				const name = text(info.name, 'XINFO CONSUMERS')
				if (name === consumer || int(info.pending) !== 0 || (int(info.idle) ?? 0) < idleMs) continue
				await redis.call('XGROUP', 'DELCONSUMER', streamKey, group, name)
				pruned.push(name)
			}
			return pruned
		},
	}
}
