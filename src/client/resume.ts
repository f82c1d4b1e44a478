// Step 3, resume: what an answer does to the bytes on disk, and what to do when a body stops or a token is refused.
import { DownloadError } from './download-error'
import type { DownloadState } from './plan'
import type { BodyAnswer } from './request'
import { isRetryableStatus } from './retry'

const REFRESHABLE_CODES: ReadonlySet<string> = new Set(['token_used_up', 'token_expired'])

/**
 * The state once an answer's body starts (pure). A 206 continues the bytes on
 * disk; a 200 replaces them (to a resume it means `If-Range` failed: the file
 * changed, so a size hinted for the old file is dropped too).
 */
export function enterBody(state: DownloadState, answer: BodyAnswer): DownloadState {
	if (answer.status === 206) {
		return {
			...state,
			size: answer.size === null ? state.size : { bytes: answer.size, source: 'announced' },
			etag: state.etag ?? answer.etag,
			resumed: state.received > 0 ? state.resumed + 1 : state.resumed,
		}
	}
	const keptHint = state.received === 0 && state.size?.source === 'hinted' ? state.size : null
	return {
		...state,
		received: 0,
		size: answer.size === null ? keptHint : { bytes: answer.size, source: 'announced' },
		etag: answer.etag,
		lastModified: answer.lastModified,
	}
}

/** The state once the body outgrew a hinted size: the hint was about an older file, so the size is unknown (pure). */
export function withoutOutgrownHint(state: DownloadState): DownloadState {
	const { size, received } = state
	return size?.source === 'hinted' && received > size.bytes ? { ...state, size: null } : state
}

/** The state once a `HEAD` told the size of a 200 that did not (pure). */
export function withHeadSize(state: DownloadState, bytes: number | null): DownloadState {
	return state.size === null && bytes !== null ? { ...state, size: { bytes, source: 'announced' } } : state
}

/** The state once a 416 confirmed the bytes on disk are the whole file (pure). */
export function completed(state: DownloadState, size: number): DownloadState {
	return { ...state, size: { bytes: size, source: 'announced' } }
}

/** What is left to do once a body stopped. */
export type BodyVerdict =
	/** The file is on disk. */
	| { readonly next: 'done' }
	/** Ask at once for the rest: the body was cut after delivering bytes, or covered less than the file. */
	| { readonly next: 'resume' }
	/** The body failed before delivering a byte: back off, then try again. */
	| { readonly next: 'retry'; readonly error: DownloadError }
	/** More bytes than the file has: stop. */
	| { readonly next: 'fail'; readonly error: DownloadError }

/** How a body stopped: where the download stood before it, where it was announced to end, and the read error if it broke. */
export interface StoppedBody {
	readonly status: number
	readonly before: number
	readonly end: number | null
	readonly broken: { readonly reason: unknown } | null
}

/**
 * Judges a stopped body (pure). A body with no announced end is expected to
 * end at the known size (a `HEAD` or the caller's hint); one ending short of
 * it, or one that broke, is a cut.
 */
export function judgeBody(state: DownloadState, body: StoppedBody): BodyVerdict {
	const { received, size } = state
	if (size?.source === 'announced' && received > size.bytes) {
		const message = `received ${received} of a ${size.bytes}-byte file`
		return { next: 'fail', error: new DownloadError('length_mismatch', body.status, message) }
	}
	const expectedEnd = body.end ?? size?.bytes ?? null
	const cut = body.broken !== null || (expectedEnd !== null && received < expectedEnd)
	if (cut) {
		if (received > body.before) return { next: 'resume' }
		const { broken } = body
		const why = broken === null ? 'the body ended early' : `the body failed: ${String(broken.reason)}`
		return { next: 'retry', error: new DownloadError('network_error', null, why, { cause: broken?.reason }) }
	}
	// A range shorter than asked for: ask for the rest.
	if (size !== null && received < size.bytes) return { next: 'resume' }
	return { next: 'done' }
}

/** What to do with an error answer: get a fresh token, retry after a delay, or give up (pure). */
export function afterRefusal(error: DownloadError, canRefresh: boolean): 'refresh' | 'retry' | 'fail' {
	if (error.status === 401 && REFRESHABLE_CODES.has(error.code) && canRefresh) return 'refresh'
	if (error.status !== null && isRetryableStatus(error.status)) return 'retry'
	return 'fail'
}

/** The token in use, and fresh ones from `getFreshToken` when the service refuses it as used up or expired. */
export interface TokenKeeper {
	/** The token to send now. */
	readonly current: string
	/** Tokens used so far: 1, plus one per refresh. */
	readonly used: number
	/** True when a refused token may be replaced: `getFreshToken` was given, and the last fresh token delivered bytes. */
	readonly canRefresh: boolean
	/** Replaces the token with one from `getFreshToken` (throws what it throws). */
	refresh(): Promise<void>
	/** Notes that the current token delivered bytes. */
	proven(): void
}

/** Keeps the download's token, starting with `first`. */
export function createTokenKeeper(
	first: string,
	getFreshToken: (() => string | Promise<string>) | undefined,
): TokenKeeper {
	let current = first
	let used = 1
	// A fresh token refused before it delivered a byte is not replaced again: that would loop.
	let freshUnproven = false
	return {
		get current() {
			return current
		},
		get used() {
			return used
		},
		get canRefresh() {
			return getFreshToken !== undefined && !freshUnproven
		},
		async refresh() {
			if (getFreshToken === undefined) throw new TypeError('no getFreshToken to refresh with')
			current = await getFreshToken()
			used += 1
			freshUnproven = true
		},
		proven() {
			freshUnproven = false
		},
	}
}
