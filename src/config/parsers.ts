import { closeSync, openSync, statSync } from 'node:fs'

// The value parsers TypeBox cannot express. Each takes the trimmed raw string
// and returns the decoded value, or throws `Invalid` with the problem to print.

/** A rate limit: `limit` events per `windowS` seconds. */
export interface RateLimit {
	readonly limit: number
	readonly windowS: number
}

/** A network address; IPv6 hosts are unbracketed. */
export interface HostPort {
	readonly host: string
	readonly port: number
}

/** `REDIS_NAT_MAP`: the address to dial for each node address Redis announces, keyed `host:port` (IPv6 unbracketed, as ioredis looks it up). */
export interface RedisNatMap {
	readonly [announced: string]: HostPort
}

/** Thrown by a parser inside the schema; `loadConfig` turns it into a ConfigError naming the variable. */
export class Invalid extends Error {}

const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8')

/** A value quoted for the one-line error: escapes quotes, and is kept short. */
export const quote = (raw: string): string => JSON.stringify(raw.length > 80 ? `${raw.slice(0, 80)}…` : raw)

const commaList = (raw: string): string[] =>
	raw
		.split(',')
		.map((s) => s.trim())
		.filter((s) => s !== '')

const BYTE_UNITS: Record<string, number> = {
	'': 1,
	b: 1,
	kb: 1000,
	mb: 1000 ** 2,
	gb: 1000 ** 3,
	kib: 1024,
	mib: 1024 ** 2,
	gib: 1024 ** 3,
}

/** Parses `8MiB`, `500kb`, `1048576` into bytes; null when it is not a size. */
export function parseBytes(raw: string): number | null {
	const m = /^(\d+)\s*([a-z]*)$/i.exec(raw.trim())
	if (!m) return null
	const unit = BYTE_UNITS[(m[2] ?? '').toLowerCase()]
	if (unit === undefined) return null
	const n = Number(m[1]) * unit
	return Number.isSafeInteger(n) ? n : null
}

const WINDOW_UNITS: Record<string, number> = { s: 1, sec: 1, m: 60, min: 60, h: 3600, hour: 3600 }

/** Parses `60/min`, `30/10s`, `1000/hour`; null when it is not a rate limit. */
export function parseRateLimit(raw: string): RateLimit | null {
	const m = /^(\d+)\s*\/\s*(\d*)\s*([a-z]+)$/i.exec(raw.trim())
	if (!m) return null
	const unit = WINDOW_UNITS[(m[3] ?? '').toLowerCase()]
	const count = m[2] === '' ? 1 : Number(m[2])
	const limit = Number(m[1])
	if (unit === undefined || limit < 1 || count < 1) return null
	return { limit, windowS: count * unit }
}

/** `RATE_LIMIT_*`: a rate limit; throws `Invalid` otherwise. */
export const rateLimit = (raw: string): RateLimit => {
	const parsed = parseRateLimit(raw)
	if (!parsed) throw new Invalid(`must look like 60/min, 30/10s or 1000/hour; got ${quote(raw)}`)
	return parsed
}

/** A size in bytes; throws `Invalid` otherwise. */
export const byteSize = (raw: string): number => {
	const parsed = parseBytes(raw)
	if (parsed === null) throw new Invalid(`must be a size like 8MiB or 1048576; got ${quote(raw)}`)
	return parsed
}

/** Seconds with an optional fraction, 0 to 3600 (`1`, `0.5`); throws `Invalid` otherwise. */
export const fractionalSeconds = (raw: string): number => {
	if (!/^\d{1,4}(\.\d{1,3})?$/.test(raw) || Number(raw) > 3600)
		throw new Invalid(`must be a number of seconds from 0 to 3600, like 1 or 0.5; got ${quote(raw)}`)
	return Number(raw)
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 }

/** Parses `24h`, `90m`, `7d`, `3600` (seconds) into seconds; null when it is not a duration. */
export function parseDuration(raw: string): number | null {
	const m = /^(\d{1,9})\s*([smhd]?)$/i.exec(raw.trim())
	if (!m) return null
	const unit = DURATION_UNITS[(m[2] || 's').toLowerCase()]
	return unit === undefined ? null : Number(m[1]) * unit
}

/** A duration in seconds; throws `Invalid` otherwise. */
export const duration = (raw: string): number => {
	const parsed = parseDuration(raw)
	if (parsed === null || parsed < 1)
		throw new Invalid(`must be a duration like 24h, 90m, 7d or 3600 (seconds); got ${quote(raw)}`)
	return parsed
}

/** The lifecycle event types (docs/contract.md §7). */
export const EVENT_TYPES = [
	'token.issued',
	'token.revoked',
	'download.started',
	'download.completed',
	'download.broken',
	'token.used_up',
	'download.denied',
] as const
export type EventType = (typeof EVENT_TYPES)[number]

/** Comma-separated event types, each one of `EVENT_TYPES`, at least one. */
export const eventTypes = (raw: string): EventType[] => {
	const entries = commaList(raw)
	if (entries.length === 0) throw new Invalid(`must list at least one of ${EVENT_TYPES.join(', ')}`)
	for (const entry of entries)
		if (!(EVENT_TYPES as readonly string[]).includes(entry))
			throw new Invalid(`${quote(entry)} is not an event type (${EVENT_TYPES.join(', ')})`)
	return [...new Set(entries)] as EventType[]
}

/** Comma-separated http(s) URLs, at least one (never echoed: a URL may carry a credential). */
export const urlList = (raw: string): string[] => {
	const entries = commaList(raw)
	if (entries.length === 0) throw new Invalid('must list at least one http(s) URL')
	entries.forEach((entry, i) => {
		const parsed = URL.canParse(entry) ? new URL(entry) : null
		if (!parsed || !['http:', 'https:'].includes(parsed.protocol))
			throw new Invalid(`entry ${i + 1} is not an http(s) URL`)
	})
	return entries
}

/** A Standard Webhooks signing secret, `whsec_` then base64 of at least 24 bytes. */
export const webhookSecret = (raw: string): string => {
	const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(raw)
	if (!m || Buffer.from(m[1] ?? '', 'base64').length < 24)
		throw new Invalid(
			'must be whsec_ followed by the base64 of at least 24 random bytes (e.g. whsec_$(openssl rand -base64 32))',
		)
	return raw
}

/** `host:port`, `[v6]:port`; an unbracketed IPv6 address is ambiguous, so it is not one. */
function hostPort(raw: string): HostPort | null {
	const m = /^(?:\[([0-9a-f:.]+)\]|([^\s:[\]=,/@]+)):(\d{1,5})$/i.exec(raw)
	const host = m?.[1] ?? m?.[2]
	const port = Number(m?.[3])
	if (!host || !Number.isInteger(port) || port < 1 || port > 65_535) return null
	return { host, port }
}

/** Comma-separated `host:port` entries, at least one; throws `Invalid` naming the first bad entry. */
export const hostPortList = (raw: string): HostPort[] => {
	const entries = commaList(raw)
	if (entries.length === 0) throw new Invalid('must list at least one host:port')
	return entries.map((entry) => {
		const parsed = hostPort(entry)
		if (!parsed) throw new Invalid(`${quote(entry)} is not host:port`)
		return parsed
	})
}

/** `announced-host:port=reachable-host:port,…`; throws `Invalid` on a malformed or repeated entry. */
export const natMap = (raw: string): RedisNatMap => {
	const map: Record<string, HostPort> = {}
	const entries = commaList(raw)
	if (entries.length === 0) throw new Invalid('must list at least one announced-host:port=reachable-host:port')
	for (const entry of entries) {
		const [announcedRaw, reachableRaw, ...extra] = entry.split('=')
		const announced = hostPort(announcedRaw?.trim() ?? '')
		const reachable = hostPort(reachableRaw?.trim() ?? '')
		if (!announced || !reachable || extra.length > 0)
			throw new Invalid(`${quote(entry)} is not announced-host:port=reachable-host:port`)
		const key = `${announced.host}:${announced.port}`
		if (key in map) throw new Invalid(`${quote(announcedRaw ?? key)} is mapped twice`)
		map[key] = reachable
	}
	return map
}

/** A secret of at least `minBytes` bytes (what HMAC keys and compared tokens are made of); throws `Invalid` without echoing it. */
export const secret =
	(minBytes: number) =>
	(raw: string): string => {
		// Never echo the value: only its length is safe to print.
		if (byteLength(raw) < minBytes) throw new Invalid(`must be at least ${minBytes} bytes, got ${byteLength(raw)}`)
		return raw
	}

/** Comma-separated secrets of at least `minBytes` bytes each; throws `Invalid` without echoing any. */
export const secretList =
	(minBytes: number) =>
	(raw: string): readonly string[] => {
		const items = commaList(raw)
		if (items.some((item) => byteLength(item) < minBytes))
			throw new Invalid(`each entry must be at least ${minBytes} bytes`)
		return items
	}

/** An `http://` or `https://` URL, kept as given; throws `Invalid` otherwise. */
export const httpUrl = (raw: string): string => {
	if (!URL.canParse(raw)) throw new Invalid(`${quote(raw)} is not a URL`)
	if (!['http:', 'https:'].includes(new URL(raw).protocol)) throw new Invalid('must start with http:// or https://')
	return raw
}

/** An `http(s)://` URL that other paths are appended to: trailing slashes dropped; throws `Invalid` otherwise. */
export const baseUrl = (raw: string): string => httpUrl(raw).replace(/\/+$/, '')

/** A `redis://` or `rediss://` URL naming a host, kept as given; throws `Invalid` otherwise. */
export const redisUrl = (raw: string): string => {
	// The URL may carry a password, so these messages never quote it.
	if (!URL.canParse(raw)) throw new Invalid('is not a URL (expected redis://host:port or rediss://host:port)')
	const parsed = new URL(raw)
	if (!['redis:', 'rediss:'].includes(parsed.protocol)) throw new Invalid('must start with redis:// or rediss://')
	if (parsed.hostname === '') throw new Invalid('names no host')
	return raw
}

/** `*` or comma-separated origins (trailing slash dropped); throws `Invalid` on anything that is not an origin. */
export const corsOrigins = (raw: string): readonly string[] | '*' => {
	const origins = commaList(raw)
	if (origins.length === 0 || origins.includes('*')) return '*'
	for (const origin of origins) {
		const parsed = URL.canParse(origin) ? new URL(origin) : null
		if (!parsed || parsed.origin !== origin.replace(/\/$/, ''))
			throw new Invalid(`${quote(origin)} is not an origin like https://app.example.com`)
	}
	return origins.map((o) => o.replace(/\/$/, ''))
}

/** A path to a regular file this process can open; throws `Invalid` naming the path and the errno code. */
export const readableFile = (raw: string): string => {
	// Checked at start-up so a typo fails now, not at the first TLS handshake after a failover.
	let isFile: boolean
	try {
		isFile = statSync(raw).isFile()
		if (isFile) closeSync(openSync(raw, 'r'))
	} catch (err) {
		const code = err instanceof Error && 'code' in err ? String(err.code) : 'error'
		throw new Invalid(`cannot read ${quote(raw)} (${code})`)
	}
	if (!isFile) throw new Invalid(`${quote(raw)} is not a file`)
	return raw
}
