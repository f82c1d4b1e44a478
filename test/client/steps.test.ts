import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { DownloadError, errorFromBody } from '../../src/client/download-error'
import {
	nonNegativeInt,
	parseContentRange,
	retryAfterMs,
	strongEtag,
	unsatisfiedSize,
} from '../../src/client/http-headers'
import {
	type DownloadState,
	discarded,
	planRequest,
	progressOf,
	startState,
	validSizeHint,
} from '../../src/client/plan'
import { type BodyAnswer, readAnswer, requestHeaders } from '../../src/client/request'
import {
	afterRefusal,
	completed,
	createTokenKeeper,
	enterBody,
	judgeBody,
	withHeadSize,
	withoutOutgrownHint,
} from '../../src/client/resume'
import { backoffMs, createRetries, isRetryableStatus } from '../../src/client/retry'

const ETAG = '"v1"'
const state = (over: Partial<DownloadState> = {}): DownloadState => ({ ...startState(null), ...over })
const headers = (h: Record<string, string>) => new Headers(h)
const body200 = (over: Partial<BodyAnswer> = {}): BodyAnswer => ({
	kind: 'body',
	status: 200,
	from: 0,
	end: null,
	size: null,
	etag: ETAG,
	lastModified: null,
	...over,
})

describe('http-headers', () => {
	test('parseContentRange round-trips every satisfied range and rejects inconsistent ones', () => {
		fc.assert(
			fc.property(fc.nat(2 ** 40), fc.nat(2 ** 40), fc.nat(2 ** 40), (a, b, extra) => {
				const [start, end] = a <= b ? [a, b] : [b, a]
				const size = end + 1 + extra
				expect(parseContentRange(`bytes ${start}-${end}/${size}`)).toEqual({ start, end, size })
				expect(parseContentRange(`bytes ${start}-${end}/*`)).toEqual({ start, end, size: null })
				expect(parseContentRange(`bytes ${start}-${end}/${end}`)).toBeNull() // last byte past the size
				// First byte after the last: reversed, never a range (end + 1 > start always).
				expect(parseContentRange(`bytes ${end + 1}-${start}/${size + 1}`)).toBeNull()
			}),
		)
		for (const raw of [null, '', 'bytes */10', 'items 0-1/2', 'bytes 0-1/2, 3-4/5', 'bytes -1-2/3'])
			expect(parseContentRange(raw)).toBeNull()
	})

	test('unsatisfiedSize reads only the bytes */<size> form', () => {
		expect(unsatisfiedSize('bytes */4096')).toBe(4096)
		expect(unsatisfiedSize(' BYTES */0 ')).toBe(0)
		for (const raw of [null, 'bytes 0-1/2', 'bytes */*', 'bytes */1e3']) expect(unsatisfiedSize(raw)).toBeNull()
	})

	test('nonNegativeInt: whole numbers of at most 15 digits only', () => {
		expect(nonNegativeInt(' 42 ')).toBe(42)
		for (const raw of [null, '', '-1', '1.5', '1e3', '0x10', '1234567890123456']) expect(nonNegativeInt(raw)).toBeNull()
	})

	test('retryAfterMs: seconds or an HTTP-date, never negative', () => {
		const now = Date.parse('2026-11-24T10:00:00Z')
		expect(retryAfterMs('3', now)).toBe(3000)
		expect(retryAfterMs('Tue, 24 Nov 2026 10:00:05 GMT', now)).toBe(5000)
		expect(retryAfterMs('Tue, 24 Nov 2026 09:00:00 GMT', now)).toBe(0)
		expect(retryAfterMs('soon', now)).toBeNull()
		expect(retryAfterMs(null, now)).toBeNull()
	})

	test('strongEtag drops weak validators (unusable in If-Range)', () => {
		expect(strongEtag('"abc"')).toBe('"abc"')
		expect(strongEtag('W/"abc"')).toBeNull()
		expect(strongEtag(null)).toBeNull()
	})
})

describe('plan', () => {
	test('a fresh download asks for the whole file; bytes with a validator are continued with If-Range', () => {
		expect(planRequest(state())).toEqual({ kind: 'whole', discard: false })
		expect(planRequest(state({ received: 10, etag: ETAG }))).toEqual({ kind: 'rest', from: 10, ifRange: ETAG })
		const lm = 'Tue, 24 Nov 2026 10:00:00 GMT'
		expect(planRequest(state({ received: 10, lastModified: lm }))).toEqual({ kind: 'rest', from: 10, ifRange: lm })
	})

	test('bytes nothing vouches for are dropped, not spliced', () => {
		const s = state({ received: 10 })
		expect(planRequest(s)).toEqual({ kind: 'whole', discard: true })
		expect(discarded(s).received).toBe(0)
	})

	test('requestHeaders: the token always, Range + If-Range only for the rest', () => {
		const whole = requestHeaders('t', { kind: 'whole', discard: false })
		expect([...whole.entries()]).toEqual([['authorization', 'Bearer t']])
		const rest = requestHeaders('t', { kind: 'rest', from: 5, ifRange: ETAG })
		expect(rest.get('range')).toBe('bytes=5-')
		expect(rest.get('if-range')).toBe(ETAG)
	})

	test('a size hint is kept only when it is a whole number of bytes', () => {
		expect([7, 0, -1, 1.5, Number.NaN, null, undefined].map(validSizeHint)).toEqual([
			7,
			0,
			null,
			null,
			null,
			null,
			null,
		])
		expect(startState(7).size).toEqual({ bytes: 7, source: 'hinted' })
		expect(startState(null).size).toBeNull()
	})

	test('progress shows a hinted total until the bytes prove it too small', () => {
		const hinted = startState(100)
		expect(progressOf({ ...hinted, received: 100 })).toEqual({ received: 100, total: 100 })
		expect(progressOf({ ...hinted, received: 101 })).toEqual({ received: 101, total: null })
		const announced = withHeadSize(state(), 100)
		expect(progressOf({ ...announced, received: 101 })).toEqual({ received: 101, total: 100 })
	})
})

describe('request: readAnswer', () => {
	test('200: a body from zero, with its length when sent', () => {
		expect(readAnswer(200, headers({ 'content-length': '10', etag: ETAG }), state())).toMatchObject({
			kind: 'body',
			from: 0,
			end: 10,
			size: 10,
			etag: ETAG,
		})
		expect(readAnswer(200, headers({ etag: 'W/"weak"' }), state())).toMatchObject({ end: null, etag: null })
	})

	test('206: continues where the download stands, or is a mismatch', () => {
		const at4 = state({ received: 4, etag: ETAG })
		expect(readAnswer(206, headers({ 'content-range': 'bytes 4-9/10', etag: ETAG }), at4)).toMatchObject({
			kind: 'body',
			from: 4,
			end: 10,
			size: 10,
		})
		const elsewhere = readAnswer(206, headers({ 'content-range': 'bytes 6-9/10' }), at4)
		expect(elsewhere).toMatchObject({ kind: 'mismatch', error: { code: 'range_mismatch', status: 206 } })
		const other = readAnswer(206, headers({ 'content-range': 'bytes 4-9/10', etag: '"v2"' }), at4)
		expect(other).toMatchObject({ kind: 'mismatch', error: { code: 'validator_mismatch' } })
	})

	test('416 naming exactly the bytes on disk means complete; anything else is a refusal', () => {
		const at10 = state({ received: 10, etag: ETAG })
		expect(readAnswer(416, headers({ 'content-range': 'bytes */10' }), at10)).toEqual({ kind: 'complete', size: 10 })
		expect(readAnswer(416, headers({ 'content-range': 'bytes */12' }), at10)).toEqual({ kind: 'refused' })
		expect(readAnswer(416, headers({ 'content-range': 'bytes */0' }), state())).toEqual({ kind: 'refused' })
		for (const status of [401, 403, 404, 429, 500, 503])
			expect(readAnswer(status, headers({}), at10).kind).toBe('refused')
	})

	test('errorFromBody keeps the service’s code and message, and names anything else unexpected_response', () => {
		const ours = errorFromBody(401, JSON.stringify({ error: 'token_used_up', message: 'Spent.' }))
		expect(ours).toBeInstanceOf(DownloadError)
		expect(ours).toMatchObject({ code: 'token_used_up', status: 401, message: 'Spent.' })
		expect(errorFromBody(502, '<html>Bad gateway</html>')).toMatchObject({
			code: 'unexpected_response',
			status: 502,
			message: 'HTTP 502: <html>Bad gateway</html>',
		})
	})
})

describe('resume', () => {
	test('a 200 replaces the bytes on disk; to a resume it also drops a hint about the old file', () => {
		const first = enterBody(startState(100), body200())
		expect(first.size).toEqual({ bytes: 100, source: 'hinted' }) // no length sent: the hint stands
		const restart = enterBody({ ...first, received: 40 }, body200({ etag: '"v2"' }))
		expect(restart).toMatchObject({ received: 0, size: null, etag: '"v2"' })
		const announced = enterBody(startState(100), body200({ end: 90, size: 90 }))
		expect(announced.size).toEqual({ bytes: 90, source: 'announced' })
	})

	test('a 206 continues, counts a resume and learns the size from Content-Range', () => {
		const s = enterBody(state({ received: 4, etag: ETAG }), { ...body200(), status: 206, from: 4, end: 10, size: 10 })
		expect(s).toMatchObject({ received: 4, resumed: 1, etag: ETAG, size: { bytes: 10, source: 'announced' } })
	})

	const stopped = { status: 200, before: 0, end: null, broken: null }

	test('judgeBody: done, resume after progress, retry without, fail past an announced size', () => {
		const sized = completed(state(), 10)
		expect(judgeBody({ ...sized, received: 10 }, stopped)).toEqual({ next: 'done' })
		expect(judgeBody({ ...sized, received: 6 }, stopped)).toEqual({ next: 'resume' }) // ended short
		expect(judgeBody({ ...sized, received: 6 }, { ...stopped, broken: { reason: 'reset' } })).toEqual({
			next: 'resume',
		})
		const noProgress = judgeBody({ ...sized, received: 6 }, { ...stopped, before: 6, broken: { reason: 'reset' } })
		expect(noProgress).toMatchObject({ next: 'retry', error: { code: 'network_error', status: null } })
		expect(judgeBody({ ...sized, received: 11 }, stopped)).toMatchObject({
			next: 'fail',
			error: { code: 'length_mismatch' },
		})
		// A 206 that covered less than the file: ask for the rest.
		expect(judgeBody({ ...sized, received: 8 }, { ...stopped, status: 206, end: 8 })).toEqual({ next: 'resume' })
		// Nothing known about the size: a clean end is the end.
		expect(judgeBody(state({ received: 3 }), stopped)).toEqual({ next: 'done' })
	})

	test('judgeBody with a hint: short of it is a cut, at it is done; a body past it drops it', () => {
		const hinted = startState(10)
		expect(judgeBody({ ...hinted, received: 6 }, stopped)).toEqual({ next: 'resume' })
		expect(judgeBody({ ...hinted, received: 10 }, stopped)).toEqual({ next: 'done' })
		// More bytes than hinted is a file that grew since issuance, never an error: the size is unknown again.
		expect(withoutOutgrownHint({ ...hinted, received: 10 }).size).toEqual({ bytes: 10, source: 'hinted' })
		expect(withoutOutgrownHint({ ...hinted, received: 12 }).size).toBeNull()
		const announced = completed(state(), 10)
		expect(withoutOutgrownHint({ ...announced, received: 12 })).toEqual({ ...announced, received: 12 })
		// Ending short of the hint without a new byte counts as a failed attempt, like any cut.
		expect(judgeBody({ ...hinted, received: 6 }, { ...stopped, before: 6 })).toMatchObject({ next: 'retry' })
	})

	test('afterRefusal: fresh token for used-up/expired 401s (when allowed), retry for later, else fail', () => {
		const e = (status: number, code: string) => new DownloadError(code, status, code)
		expect(afterRefusal(e(401, 'token_used_up'), true)).toBe('refresh')
		expect(afterRefusal(e(401, 'token_expired'), true)).toBe('refresh')
		expect(afterRefusal(e(401, 'token_used_up'), false)).toBe('fail')
		expect(afterRefusal(e(401, 'token_revoked'), true)).toBe('fail')
		expect(afterRefusal(e(503, 'store_unavailable'), true)).toBe('retry')
		expect(afterRefusal(e(429, 'rate_limited'), false)).toBe('retry')
		expect(afterRefusal(e(404, 'file_not_found'), true)).toBe('fail')
	})

	test('a fresh token refused before it delivered a byte is not replaced again', async () => {
		let n = 0
		const tokens = createTokenKeeper('t0', () => `t${++n}`)
		expect(tokens).toMatchObject({ current: 't0', used: 1, canRefresh: true })
		await tokens.refresh()
		expect(tokens).toMatchObject({ current: 't1', used: 2, canRefresh: false })
		tokens.proven()
		expect(tokens.canRefresh).toBe(true)
		expect(createTokenKeeper('t', undefined).canRefresh).toBe(false)
	})
})

describe('retry', () => {
	test('backoffMs doubles from the base up to 30 s; Retry-After wins', () => {
		expect([1, 2, 3, 4].map((f) => backoffMs(f, 250, null))).toEqual([250, 500, 1000, 2000])
		expect(backoffMs(20, 250, null)).toBe(30_000)
		expect(backoffMs(3, 250, 0)).toBe(0)
		expect(backoffMs(1, 250, 90_000)).toBe(90_000)
	})

	test('only 429, 502, 503 and 504 are retryable statuses', () => {
		expect([400, 401, 404, 416, 429, 500, 502, 503, 504].filter(isRetryableStatus)).toEqual([429, 502, 503, 504])
	})

	test('createRetries throws the last error on the maxAttempts-th failure in a row; progress resets the count', async () => {
		const retries = createRetries({ maxAttempts: 3, baseDelayMs: 0, signal: undefined })
		const err = new DownloadError('network_error', null, 'down')
		await retries.failed(err)
		await retries.failed(err)
		retries.succeeded()
		await retries.failed(err)
		await retries.failed(err)
		await expect(retries.failed(err)).rejects.toBe(err)
	})

	test('an abort ends the wait with the signal’s reason', async () => {
		const controller = new AbortController()
		const retries = createRetries({ maxAttempts: 5, baseDelayMs: 60_000, signal: controller.signal })
		const reason = new Error('stop')
		const waiting = retries.failed(new DownloadError('network_error', null, 'down'))
		controller.abort(reason)
		await expect(waiting).rejects.toBe(reason)
	})
})
