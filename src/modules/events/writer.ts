import { BoundedCache, stringBytes } from '../../bounded-cache'
import type { Clock } from '../../clock'
import type { EventType } from '../../config'
import { errorFields, type Logger } from '../../log'
import { type EventEntry, newEventIdBase } from '../../store/events'
import { defineScripts, type RedisClient, toInt } from '../../store/scripts'

/**
 * Events this instance writes itself, outside the store's scripts: those
 * that change no state (unlimited tokens' downloads, denials), and on Redis
 * Cluster the entries the scripts hand back (the stream lives in another slot).
 */
export interface EventWriter {
	/** Appends one event (soon, with others: downloads never wait on it). */
	emit(type: EventType, data: EventData): void
	/** Appends entries built elsewhere (the store's, on Cluster). */
	write(entries: readonly EventEntry[]): void
	/**
	 * A refused download: written at most once per client address and reason
	 * every `DENIED_EVERY_MS` by this instance, the ones held back counted in
	 * the next one's `suppressed`, so a flood of refusals is a trickle of events.
	 */
	denied(data: EventData & { readonly reason: string; readonly ip: string }): void
	/** Writes out what waits (at shutdown). */
	flush(): Promise<void>
}

/** An event's data: the token's identity first, then its own fields. */
export type EventData = {
	readonly jti: string | null
	readonly user_id: string
	readonly filename: string
	readonly request_id?: string | undefined
} & Readonly<Record<string, unknown>>

/**
 * Appends the entries ARGV[2…] (id, type, timestamp, data each) to the stream
 * KEYS[1], trimmed to about ARGV[1]; answers how many it appended. One command
 * per batch: a pipeline of XADDs cost the instance 11–15 µs of CPU per event in
 * ioredis, this about 3 (bench/results/profiles/2026-12-06-events-writer.md).
 */
const APPEND = `
local n = 0
for i = 2, #ARGV, 4 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'id', ARGV[i], 'type', ARGV[i + 1], 'timestamp', ARGV[i + 2], 'data', ARGV[i + 3])
  n = n + 1
end
return n
`

/** Redis answered the command with an error (as opposed to not answering). */
const refusedByRedis = (err: unknown): boolean =>
	err instanceof Error && (err.name === 'ReplyError' || (err.cause instanceof Error && err.cause.name === 'ReplyError'))

/** Entries wait this long (or for this many) before they are appended together. */
const FLUSH_MS = 20
const FLUSH_EVERY = 128
/** Entries waiting while Redis does not answer, at most; the oldest give way (and are counted). */
const MAX_WAITING = 10_000
/** One denial event per client address and reason per this long, per instance. */
export const DENIED_EVERY_MS = 10_000

/** Builds the writer appending to `streamKey` (trimmed to about `maxLen`) through `client`. */
export function createEventWriter(deps: {
	readonly client: RedisClient
	readonly streamKey: string
	readonly maxLen: number
	readonly clock: Clock
	readonly log: Logger
	/** Told the type of each event appended, and of each given up. */
	readonly written: (type: string) => void
	readonly dropped: (type: string) => void
}): EventWriter {
	const { client, streamKey, maxLen, clock, log } = deps
	const { append: appendScript } = defineScripts(client, { append: { numberOfKeys: 1, lua: APPEND } })
	let waiting: EventEntry[] = []
	let timer: ReturnType<typeof setTimeout> | undefined
	let flushing: Promise<void> | null = null

	async function flushNow(): Promise<void> {
		clearTimeout(timer)
		timer = undefined
		if (waiting.length === 0) return
		const batch = waiting
		waiting = []
		const args: (string | number)[] = [maxLen]
		for (const e of batch) args.push(e.id, e.type, e.timestamp, e.data)
		try {
			const written = toInt(await appendScript.run([streamKey], args))
			batch.forEach((e, i) => {
				if (i < written) deps.written(e.type)
				else deps.dropped(e.type)
			})
		} catch (err) {
			if (refusedByRedis(err)) {
				// Redis answered and refused (out of memory, the key of another type): retrying would not help.
				log.warn('events could not be written; dropped', { count: batch.length, ...errorFields(err) })
				for (const e of batch) deps.dropped(e.type)
				return
			}
			// Redis is away: these events go back in line, ahead of newer ones, within the bound.
			log.warn('events could not be written yet; will retry', { count: batch.length, ...errorFields(err) })
			waiting = [...batch, ...waiting]
			trim()
			schedule(1000)
		}
	}

	function trim() {
		while (waiting.length > MAX_WAITING) {
			const gone = waiting.shift()
			if (gone) deps.dropped(gone.type)
		}
	}

	function schedule(ms: number) {
		if (timer !== undefined || flushing !== null) return
		timer = setTimeout(() => {
			timer = undefined
			flushing = flushNow().finally(() => {
				flushing = null
				if (waiting.length > 0) schedule(FLUSH_MS)
			})
		}, ms)
		timer.unref?.()
	}

	function append(entry: EventEntry) {
		waiting.push(entry)
		trim()
		schedule(waiting.length >= FLUSH_EVERY ? 0 : FLUSH_MS)
	}

	// Per address and reason: until when nothing more is written, and how many were held back since.
	const deniedWindows = new BoundedCache<{ until: number; held: number }>(1024 * 1024, (key) => stringBytes(key) + 32)

	const emit = (type: EventType, data: EventData) =>
		append({ id: newEventIdBase(), type, timestamp: new Date(clock()).toISOString(), data: JSON.stringify(data) })

	return {
		emit,
		write(entries) {
			for (const entry of entries) append(entry)
		},
		denied(data) {
			const key = `${data.ip}\0${data.reason}`
			const now = clock()
			const window = deniedWindows.get(key)
			if (window !== undefined && window.until > now) {
				window.held++
				return
			}
			deniedWindows.set(key, { until: now + DENIED_EVERY_MS, held: 0 })
			emit('download.denied', { ...data, suppressed: window?.held ?? 0 })
		},
		async flush() {
			await flushing
			await flushNow()
		},
	}
}
