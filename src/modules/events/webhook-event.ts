import { streamIdMs } from './webhook-stream'

/** One stream entry ready to POST (docs/contract.md §7). */
export interface WebhookEvent {
	readonly id: string
	readonly type: string
	/** Epoch ms the event happened (its `timestamp`), from which its age is counted. */
	readonly happenedAtMs: number
	/** `{ "id", "type", "timestamp", "data" }`, the bytes that are signed and sent. */
	readonly body: string
}

/** An entry's fields as the event they carry, or why they are not one. */
export type ParsedEvent =
	| { readonly ok: true; readonly event: WebhookEvent }
	| { readonly ok: false; readonly error: string }

const isObject = (value: unknown): value is Record<string, unknown> =>
	typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * Reads the fields `id`, `type`, `timestamp` (RFC 3339) and `data` (a JSON
 * object as text) of the entry `streamId`. A timestamp that does not parse
 * counts the age from the stream id instead.
 */
export function parseEvent(streamId: string, fields: readonly string[]): ParsedEvent {
	const named = new Map<string, string>()
	for (let i = 0; i + 1 < fields.length; i += 2) named.set(fields[i] ?? '', fields[i + 1] ?? '')
	const id = named.get('id')
	const type = named.get('type')
	const timestamp = named.get('timestamp')
	const rawData = named.get('data')
	if (!id || !type || timestamp === undefined || rawData === undefined) {
		return { ok: false, error: 'malformed entry: id, type, timestamp and data are required' }
	}
	let data: unknown
	try {
		data = JSON.parse(rawData)
	} catch {
		return { ok: false, error: 'malformed entry: data is not JSON' }
	}
	if (!isObject(data)) return { ok: false, error: 'malformed entry: data is not a JSON object' }
	const parsed = Date.parse(timestamp)
	const happenedAtMs = Number.isNaN(parsed) ? streamIdMs(streamId) : parsed
	return { ok: true, event: { id, type, happenedAtMs, body: JSON.stringify({ id, type, timestamp, data }) } }
}
