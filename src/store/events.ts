// How the store's scripts hand on the lifecycle events they write
// (docs/contract.md §7). A stream entry has the fields id, type, timestamp
// and data (a JSON object as text).

/** One lifecycle event as a stream entry. */
export interface EventEntry {
	/** Unique, stable across redeliveries: it becomes the webhook's `webhook-id`. */
	readonly id: string
	readonly type: string
	/** RFC 3339 with milliseconds, UTC. */
	readonly timestamp: string
	/** A JSON object as text: `jti`, `user_id`, `filename`, the request id and the type's own fields. */
	readonly data: string
}

/**
 * Where the store's events go: nowhere; `inline`, appended to the stream
 * `key` by the very script that changes the state (one atomic step), then
 * counted with `written`; or `return`ed by the script and handed to `write`
 * (Redis Cluster, where the stream lives in another slot than a user's keys).
 */
export type StoreEvents =
	| { readonly mode: 'off' }
	| {
			readonly mode: 'inline'
			readonly key: string
			readonly maxLen: number
			/** Told the types of the events a script appended. */
			readonly written: (types: readonly string[]) => void
	  }
	| { readonly mode: 'return'; readonly maxLen: number; readonly write: (entries: readonly EventEntry[]) => void }

// Unique per process (64 random bits) and per call: one base per script run, suffixed by the script.
const processTag = crypto.getRandomValues(new BigUint64Array(1))[0]?.toString(36).padStart(13, '0') ?? ''
let counter = 0

/** A fresh event id base, e.g. `evt_0k3x9b1m2q8zp4a7` (a script suffixes `-2`, `-3` … for more events of one step). */
export const newEventIdBase = (): string => `evt_${processTag}${(counter++).toString(36)}`
