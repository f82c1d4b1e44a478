// downloadToFile against a small in-process model of the download route (docs/contract.md §3.2), with faults at random moments.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { DownloadError, type DownloadProgress, downloadToFile, type FetchLike } from '../../src/client'

/**
 * What the model does with one GET: answer it, break its body after `at` bytes (`cut`), end it cleanly
 * after `at` bytes (`short`, as a proxy closing early), refuse it, or fail the fetch.
 */
type Action =
	| { kind: 'ok' }
	| { kind: 'cut' | 'short'; at: number }
	| { kind: '503' }
	| { kind: 'throw' }
	| { kind: 'used_up' }

interface Scenario {
	readonly file: Uint8Array
	/** Budgeted bodies: 200 and 206 without Content-Length. */
	readonly chunked: boolean
	/** Pass the file's size to downloadToFile. */
	readonly hint: boolean
	readonly chunk: number
	readonly actions: readonly Action[]
	/** Replace the file before this GET (index into the GETs), if set. */
	readonly changeAt: number | null
	readonly replacement: Uint8Array
}

interface Logged {
	readonly action: Action['kind']
	readonly delivered: number
}

/** A FetchLike serving `scenario` like the service would: Range + If-Range, 416 past the end, free HEAD. */
function modelService(s: Scenario) {
	let version = { bytes: s.file, etag: '"v1"' }
	let gets = 0
	let heads = 0
	const log: Logged[] = []

	const bodyOf = (bytes: Uint8Array, action: Action, entry: { delivered: number }) => {
		const cutAt = action.kind === 'cut' || action.kind === 'short' ? action.at : null
		let sent = 0
		return new ReadableStream<Uint8Array>({
			pull(out) {
				if (cutAt !== null && sent >= cutAt)
					return action.kind === 'cut' ? out.error(new TypeError('connection reset (model)')) : out.close()
				if (sent >= bytes.byteLength) return out.close()
				const room = cutAt === null ? s.chunk : Math.min(s.chunk, cutAt - sent)
				const piece = bytes.subarray(sent, sent + room)
				sent += piece.byteLength
				entry.delivered += piece.byteLength
				out.enqueue(piece)
			},
		})
	}

	const fetchLike: FetchLike = async (_input, init) => {
		const headers = new Headers(init?.headers)
		if (init?.method === 'HEAD') {
			heads += 1
			return new Response(null, {
				headers: { 'content-length': String(version.bytes.byteLength), etag: version.etag },
			})
		}
		if (gets === s.changeAt) version = { bytes: s.replacement, etag: '"v2"' }
		const action = s.actions[gets] ?? { kind: 'ok' }
		gets += 1
		const entry = { action: action.kind, delivered: 0 }
		log.push(entry)
		if (action.kind === 'throw') throw new TypeError('fetch failed (model)')
		if (action.kind === '503')
			return Response.json(
				{ error: 'store_unavailable', message: 'down' },
				{ status: 503, headers: { 'retry-after': '0' } },
			)
		if (action.kind === 'used_up') return Response.json({ error: 'token_used_up', message: 'spent' }, { status: 401 })

		const { bytes, etag } = version
		const size = bytes.byteLength
		const range = /^bytes=(\d+)-$/.exec(headers.get('range') ?? '')
		if (range && headers.get('if-range') === etag) {
			const from = Number(range[1])
			if (from >= size) return new Response(null, { status: 416, headers: { 'content-range': `bytes */${size}` } })
			const rest = bytes.subarray(from)
			const h: Record<string, string> = { etag, 'content-range': `bytes ${from}-${size - 1}/${size}` }
			if (!s.chunked) h['content-length'] = String(rest.byteLength)
			return new Response(bodyOf(rest, action, entry), { status: 206, headers: h })
		}
		const h: Record<string, string> = { etag }
		if (!s.chunked) h['content-length'] = String(size)
		return new Response(bodyOf(bytes, action, entry), { status: 200, headers: h })
	}
	return { fetch: fetchLike, log, heads: () => heads }
}

/** True when two `used_up` refusals came with no byte delivered between them (the fresh token is never replaced). */
function freshTokenRefused(log: readonly Logged[]): boolean {
	let refusedSinceBytes = 0
	for (const entry of log) {
		if (entry.action === 'used_up') refusedSinceBytes += 1
		if (entry.delivered > 0) refusedSinceBytes = 0
		if (refusedSinceBytes >= 2) return true
	}
	return false
}

/** `length` pseudo-random bytes from `seed` (cheaper to shrink than a generated array). */
function bytesFrom(length: number, seed: number): Uint8Array {
	const out = new Uint8Array(length)
	let x = seed | 1
	for (let i = 0; i < length; i++) {
		x = (Math.imul(x, 1103515245) + 12345) | 0
		out[i] = x >>> 24
	}
	return out
}

const MAX_FILE = 48_000
const bytesArb = fc
	.tuple(fc.integer({ min: 1, max: MAX_FILE }), fc.integer())
	.map(([length, seed]) => bytesFrom(length, seed))
const atArb = fc.integer({ min: 0, max: MAX_FILE })
const actionArb: fc.Arbitrary<Action> = fc.oneof(
	{ weight: 3, arbitrary: fc.constant<Action>({ kind: 'ok' }) },
	{ weight: 4, arbitrary: atArb.map((at): Action => ({ kind: 'cut', at })) },
	{ weight: 2, arbitrary: atArb.map((at): Action => ({ kind: 'short', at })) },
	{ weight: 1, arbitrary: fc.constant<Action>({ kind: '503' }) },
	{ weight: 1, arbitrary: fc.constant<Action>({ kind: 'throw' }) },
	{ weight: 1, arbitrary: fc.constant<Action>({ kind: 'used_up' }) },
)
const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
	file: bytesArb,
	chunked: fc.boolean(),
	hint: fc.boolean(),
	chunk: fc.integer({ min: 256, max: 16_384 }),
	actions: fc.array(actionArb, { maxLength: 10, size: 'medium' }),
	changeAt: fc.option(fc.integer({ min: 0, max: 4 }), { nil: null }),
	replacement: bytesArb,
})

let dir: string
let n = 0
beforeAll(async () => {
	dir = await mkdtemp(join(tmpdir(), 'dlg-client-model-'))
})
afterAll(() => rm(dir, { recursive: true, force: true }))

describe('downloadToFile against a model of the service', () => {
	test('whatever is cut, refused or replaced, the file on disk is one whole version, with sane progress', async () => {
		let unchanged = 0
		let hintedUnchanged = 0
		await fc.assert(
			fc.asyncProperty(scenarioArb, async (s) => {
				const model = modelService(s)
				const progress: DownloadProgress[] = []
				const dest = join(dir, `model-${++n}.bin`)
				let fresh = 0
				let result: Awaited<ReturnType<typeof downloadToFile>> | null = null
				try {
					result = await downloadToFile({
						url: 'http://model.invalid/api/download/u/f.mp4',
						token: 't0',
						...(s.hint ? { size: s.file.byteLength } : {}),
						dest,
						fetch: model.fetch,
						getFreshToken: () => `t${++fresh}`,
						maxAttempts: 50,
						retryDelayMs: 0,
						onProgress: (p) => progress.push(p),
					})
				} catch (err) {
					// The only way to fail here: a fresh token refused before it delivered a byte.
					expect(err).toBeInstanceOf(DownloadError)
					expect(err).toMatchObject({ code: 'token_used_up', status: 401 })
					expect(freshTokenRefused(model.log)).toBe(true)
					return
				}
				const onDisk = await Bun.file(dest).bytes()
				if (s.hint && s.chunked && result.etag === '"v2"' && result.bytes === s.file.byteLength) {
					// The one case no client can tell: the file grew after issuance and a body without a length
					// ended cleanly at exactly the size the token named. A given size is trusted there as a
					// Content-Length would be, so what is on disk is that much of the new version.
					const prefix = s.replacement.subarray(0, s.file.byteLength)
					expect(Buffer.from(onDisk).equals(Buffer.from(prefix))).toBe(true)
					return
				}
				const expected = result.etag === '"v2"' ? s.replacement : s.file
				expect(result.etag === '"v1"' || result.etag === '"v2"').toBe(true)
				expect(Buffer.from(onDisk).equals(Buffer.from(expected))).toBe(true)
				expect(result.bytes).toBe(expected.byteLength)
				expect(result.tokensUsed).toBe(1 + fresh)
				// Progress only grows, except a restart from zero when the file changed.
				for (let i = 1; i < progress.length; i++) {
					const [prev, cur] = [progress[i - 1]?.received ?? 0, progress[i]?.received ?? 0]
					expect(cur >= prev || cur === 0).toBe(true)
				}
				const last = progress.at(-1)
				expect(last?.received).toBe(expected.byteLength)
				const changed = model.log.length > (s.changeAt ?? Number.POSITIVE_INFINITY)
				// A file that never changed: the total was known all along, and a given size spares the HEAD.
				if (!changed) {
					unchanged++
					expect(last?.total).toBe(expected.byteLength)
					if (s.hint) {
						hintedUnchanged++
						expect(model.heads()).toBe(0)
					}
				}
			}),
			{ numRuns: 200 },
		)
		// The branches above were taken, so their assertions ran.
		expect(unchanged).toBeGreaterThan(0)
		expect(hintedUnchanged).toBeGreaterThan(0)
	})
})
