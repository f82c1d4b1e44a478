import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { linkSync, statSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDescriptors } from '../support/descriptors'
import { bearer, downloadPath, makeTestApp, type TestApp } from '../support/helpers'
import { pollUntil } from '../support/poll'
import { patternBytes } from './churn'
import { type Churn, expectError, isPattern, rawGet, readBody, sendRaw, startChurn } from './helpers'

// docs/contract.md §3.2 "What was checked is what is sent": the file is opened once at
// the check and the body comes from that handle. These tests change the file
// from another process while downloads run, and count the server's open files.

const KiB = 1024
const MiB = 1024 * KiB
const SECRET_MARK = 'OUTSIDE-SECRET!'

type Outcome = { status: number; detail: string }

/** The `error` code of a JSON error body, or null for anything else. */
function errorCodeOf(bytes: Uint8Array): string | null {
	try {
		const body = JSON.parse(Buffer.from(bytes).toString()) as { error?: unknown }
		return typeof body.error === 'string' ? body.error : null
	} catch {
		return null
	}
}

/** One download, classified: the right bytes, a clean 404, or what went wrong. */
async function download(
	t: TestApp,
	user: string,
	file: string,
	token: string,
	range: readonly [number, number] | null,
): Promise<{ kind: 'served' | 'not_found' | 'used_up' | 'leak' | 'server_error' | 'wrong' | 'broken'; info: Outcome }> {
	let res: Response
	try {
		res = await t.request(downloadPath(user, file), {
			headers: { ...bearer(token), ...(range ? { Range: `bytes=${range[0]}-${range[1]}` } : {}) },
			signal: AbortSignal.timeout(5000),
		})
	} catch (err) {
		return { kind: 'broken', info: { status: 0, detail: String(err) } }
	}
	const { bytes, error } = await readBody(res, 4000)
	const info = { status: res.status, detail: error ?? Buffer.from(bytes.subarray(0, 80)).toString('latin1') }
	if (Buffer.from(bytes).includes(SECRET_MARK)) return { kind: 'leak', info }
	if (res.status >= 500) return { kind: 'server_error', info }
	if (error !== null) return { kind: 'broken', info }
	const code = errorCodeOf(bytes)
	if (res.status === 404 && code === 'file_not_found') return { kind: 'not_found', info }
	if (res.status === 401 && code === 'token_used_up') return { kind: 'used_up', info }
	const expectedStatus = range ? 206 : 200
	const start = range ? range[0] : 0
	const length = Number(res.headers.get('content-length') ?? bytes.length)
	const ok = res.status === expectedStatus && bytes.length === length && isPattern(bytes, start)
	return { kind: ok ? 'served' : 'wrong', info }
}

/** Runs `workers` download loops until `ms` passed; counts outcomes by kind, keeps a few bad examples. */
async function hammer(
	ms: number,
	workers: (() => ReturnType<typeof download>)[],
): Promise<{ counts: Record<string, number>; bad: Outcome[] }> {
	const until = performance.now() + ms
	const counts: Record<string, number> = {}
	const bad: Outcome[] = []
	await Promise.all(
		workers.map(async (one) => {
			while (performance.now() < until) {
				const { kind, info } = await one()
				counts[kind] = (counts[kind] ?? 0) + 1
				if (kind !== 'served' && kind !== 'not_found' && kind !== 'used_up' && bad.length < 5) bad.push(info)
			}
		}),
	)
	return { counts, bad }
}

/** A fresh app and an outside directory holding a secret, per concern, so one crash cannot spill into the next. */
function fixture(env: Record<string, string> = {}) {
	const ctx = { t: null as unknown as TestApp, outside: '', churns: [] as Churn[] }
	beforeAll(async () => {
		ctx.t = await makeTestApp({ env: { RATE_LIMIT_DENIED: '1000000/min', RATE_LIMIT_ISSUE: '1000000/min', ...env } })
		ctx.outside = await mkdtemp(join(tmpdir(), 'dlg-outside-'))
		await writeFile(join(ctx.outside, 'secret.bin'), SECRET_MARK.repeat(Math.ceil((300 * KiB) / SECRET_MARK.length)))
	}, 15_000)
	afterAll(async () => {
		await Promise.all(ctx.churns.map((c) => c.stop()))
		await ctx.t.close()
		await rm(ctx.outside, { recursive: true, force: true })
	}, 15_000)
	return ctx
}

describe('a symlink swapped over the file between the check and the bytes', () => {
	const ctx = fixture()
	test('a symlink to a file outside storage, swapped in and out for 2 s, never serves a byte of it and never a 5xx', async () => {
		const { t, outside } = ctx
		const size = 200 * KiB + 3
		await t.putFile('123', 'race.bin', patternBytes(0, size))
		const path = join(t.storageDir, '123', 'race.bin')
		// The real file's inode, kept under another name (same file system) so the churn can put it back.
		const keep = join(outside, 'race-real')
		linkSync(path, keep)
		const unlimited = (await t.issue('123', 'race.bin')).token
		const budgeted = (await t.issue('123', 'race.bin', '?max_uses=1000000')).token

		const churn = startChurn(['swap', path, keep, join(outside, 'secret.bin'), outside, '2000'], 10_000)
		ctx.churns.push(churn)
		const range = [1000, 150 * KiB] as const
		const result = await hammer(2000, [
			() => download(t, '123', 'race.bin', unlimited, null),
			() => download(t, '123', 'race.bin', unlimited, range),
			() => download(t, '123', 'race.bin', budgeted, null),
			() => download(t, '123', 'race.bin', budgeted, range),
			() => download(t, '123', 'race.bin', budgeted, null),
		])
		const { swaps = 0 } = await churn.done

		expect(swaps).toBeGreaterThan(100)
		expect(result.counts.served ?? 0).toBeGreaterThan(10)
		expect({ leak: result.counts.leak ?? 0, server_error: result.counts.server_error ?? 0, bad: result.bad }).toEqual({
			leak: 0,
			server_error: 0,
			bad: [],
		})
	}, 15_000)
})

describe('a file that grows under its downloads', () => {
	const ctx = fixture()
	test('a file that grows during downloads: no body exceeds its announced length, no budget is overspent', async () => {
		const { t } = ctx
		// 16 KiB fits one read (plain file body), 256 KiB is streamed: both ways of sending are covered.
		const small = 16 * KiB
		const large = 256 * KiB
		await t.putFile('123', 'grow-small.bin', patternBytes(0, small))
		await t.putFile('123', 'grow-large.bin', patternBytes(0, large))
		const paths = ['grow-small.bin', 'grow-large.bin'].map((f) => join(t.storageDir, '123', f))
		const maxUses = 40
		const tokens = {
			'grow-small.bin': {
				unlimited: (await t.issue('123', 'grow-small.bin')).token,
				budgeted: await t.issue('123', 'grow-small.bin', `?max_uses=${maxUses}`),
				size: small,
			},
			'grow-large.bin': {
				unlimited: (await t.issue('123', 'grow-large.bin')).token,
				budgeted: await t.issue('123', 'grow-large.bin', `?max_uses=${maxUses}`),
				size: large,
			},
		}

		const churn = startChurn(['append', '1500', String(4 * MiB), ...paths], 10_000)
		ctx.churns.push(churn)
		const problems: unknown[] = []
		const served: Record<string, number> = { 'grow-small.bin': 0, 'grow-large.bin': 0 }
		let checked = 0
		const until = performance.now() + 1500
		const worker = async (file: keyof typeof tokens, budgeted: boolean, range: boolean) => {
			const token = budgeted ? tokens[file].budgeted.token : tokens[file].unlimited
			while (performance.now() < until) {
				const start = range ? 5 : 0
				const headers: Record<string, string> = { Authorization: `Bearer ${token}` }
				if (range) headers.Range = 'bytes=5-'
				const ex = await sendRaw(t.baseUrl, rawGet(downloadPath('123', file), headers), { timeoutMs: 4000 })
				const res = ex.responses[0]
				const status = res?.status ?? 0
				if (status === 401 && errorCodeOf(res?.body ?? new Uint8Array()) === 'token_used_up') break // the budget is spent
				const contentLength = res?.header('content-length') ?? null
				const contentRange = /^bytes (\d+)-(\d+)\/\d+$/.exec(res?.header('content-range') ?? '')
				// A chunked body announces no length: then the file's size now is the loosest honest bound.
				const announced =
					contentLength !== null
						? Number(contentLength)
						: contentRange
							? Number(contentRange[2]) - Number(contentRange[1]) + 1
							: null
				const bound = announced ?? statSync(join(t.storageDir, '123', file)).size - start
				const body = res?.body ?? new Uint8Array()
				checked++
				if (budgeted) served[file] = (served[file] ?? 0) + body.length + ex.trailing
				const verdict = {
					status: [200, 206].includes(status),
					withinAnnounced: body.length + ex.trailing <= bound,
					complete: res?.complete === true && (announced === null || body.length === announced),
					rightBytes: isPattern(body, start),
				}
				if (Object.values(verdict).includes(false) && problems.length < 5)
					problems.push({
						file,
						budgeted,
						range,
						status,
						announced,
						bound,
						got: body.length,
						trailing: ex.trailing,
						verdict,
					})
			}
		}
		await Promise.all([
			worker('grow-small.bin', false, false),
			worker('grow-small.bin', true, false),
			worker('grow-small.bin', true, true),
			worker('grow-large.bin', false, true),
			worker('grow-large.bin', true, false),
			worker('grow-large.bin', true, true),
		])
		await churn.done

		expect(checked).toBeGreaterThan(10)
		expect(problems).toEqual([])
		const list = (await (await t.request('/api/users/123/tokens')).json()) as {
			tokens: { jti: string; bytes_left: number | null }[]
		}
		for (const [file, { budgeted, size }] of Object.entries(tokens)) {
			const left = list.tokens.find((x) => x.jti === budgeted.jti)?.bytes_left ?? 0
			const allowance = Math.min(size, 8 * MiB)
			const bound = maxUses * size + allowance
			const paid = maxUses * size - left
			// docs/contract.md §3.2: never more than N × size (at issuance) + the allowance, and nothing sent that was not paid for.
			expect({ file, overBudget: Math.max(0, (served[file] ?? 0) - bound) }).toEqual({ file, overBudget: 0 })
			expect({ file, unpaid: Math.max(0, (served[file] ?? 0) - paid) }).toEqual({ file, unpaid: 0 })
		}
	}, 15_000)
})

// With the open-file cache a deleted file is still its cached inode until the next look at its
// path, so the churn runs with the cache off and with a window short enough to look many times.
describe.each([
	['the open-file cache off', '0'],
	['a 50 ms open-file cache', '0.05'],
])('a file deleted under its downloads, %s', (_name, valid) => {
	const ctx = fixture({ OPEN_FILE_CACHE_VALID: valid })
	test('a file deleted (and written again, over and over) while downloads run: each answer is a clean 404 file_not_found or a complete body, never a 5xx or a stall', async () => {
		const { t } = ctx
		const size = 1 * MiB
		await t.putFile('123', 'doomed.bin', patternBytes(0, size))
		const unlimited = (await t.issue('123', 'doomed.bin')).token
		const budgeted = (await t.issue('123', 'doomed.bin', '?max_uses=100000')).token
		const churn = startChurn(['flicker', join(t.storageDir, '123', 'doomed.bin'), String(size), '1000'], 10_000)
		ctx.churns.push(churn)
		const result = await hammer(1000, [
			() => download(t, '123', 'doomed.bin', unlimited, null),
			() => download(t, '123', 'doomed.bin', unlimited, [10, 600 * KiB]),
			() => download(t, '123', 'doomed.bin', budgeted, null),
			() => download(t, '123', 'doomed.bin', budgeted, [10, 600 * KiB]),
		])
		const { deletions = 0 } = await churn.done
		expect(deletions).toBeGreaterThan(50)
		expect(result.counts.not_found ?? 0).toBeGreaterThan(0)
		expect(result.counts.served ?? 0).toBeGreaterThan(0)
		expect({ server_error: result.counts.server_error ?? 0, bad: result.bad }).toEqual({ server_error: 0, bad: [] })
		// Once it is gone for good, and the cache has looked at the path again (a cached descriptor
		// serves its checked inode for up to OPEN_FILE_CACHE_VALID: SECURITY.md): a clean 404.
		await Bun.sleep(Number(valid) * 1000 * 2)
		await expectError(
			await t.request(downloadPath('123', 'doomed.bin'), { headers: bearer(budgeted) }),
			404,
			'file_not_found',
		)
	}, 15_000)
})

// With the open-file cache off, nothing stays open; with it on (the default), what stays open is
// the cache's own descriptors (two per file: the checked one and its readable twin), and shutting
// the storage down closes them too.
describe.each([
	['the open-file cache off', '0'],
	['the open-file cache on', '1'],
])('file handles, %s', (_name, valid) => {
	const ctx = fixture({ OPEN_FILE_CACHE_VALID: valid })
	test('every file handle is closed: complete, aborted, refused, HEAD, 304 and 416 requests leave no fd open into storage', async () => {
		const { t } = ctx
		const big = 24 * MiB
		await t.putFile('123', 'fd-big.bin', patternBytes(0, 200 * KiB))
		// A body too large to sit in socket buffers, so an abort really lands mid-body.
		writeFileSync(join(t.storageDir, '123', 'fd-huge.bin'), new Uint8Array(big))
		await t.putFile('123', 'fd-small.bin', 'small')
		const before = openDescriptors(t.storageDir)
		const unlimited = (await t.issue('123', 'fd-big.bin')).token
		const budgeted = (await t.issue('123', 'fd-big.bin', '?max_uses=100000')).token
		const hugeUnlimited = (await t.issue('123', 'fd-huge.bin')).token
		const hugeBudgeted = (await t.issue('123', 'fd-huge.bin', '?max_uses=1000')).token
		const usedUp = (await t.issue('123', 'fd-small.bin', '?max_uses=1')).token
		const get = (file: string, token: string, headers: Record<string, string> = {}, method = 'GET') =>
			t.request(downloadPath('123', file), { method, headers: { ...bearer(token), ...headers } })
		const etag = (await get('fd-big.bin', unlimited, {}, 'HEAD')).headers.get('etag') ?? ''
		await (await get('fd-small.bin', usedUp)).arrayBuffer()

		for (let round = 0; round < 10; round++) {
			for (const token of [unlimited, budgeted]) {
				await (await get('fd-big.bin', token)).arrayBuffer()
				await (await get('fd-big.bin', token, { Range: 'bytes=100-70000' })).arrayBuffer()
				await (await get('fd-big.bin', token, {}, 'HEAD')).arrayBuffer()
				await (await get('fd-big.bin', token, { 'If-None-Match': etag })).arrayBuffer()
				await (await get('fd-big.bin', token, { Range: 'bytes=999999-' })).arrayBuffer()
				await (await get('fd-small.bin', token)).arrayBuffer() // 403 token_mismatch
			}
			await (await get('fd-small.bin', usedUp)).arrayBuffer() // 401 token_used_up
			await (await get('fd-missing.bin', `${unlimited}x`)).arrayBuffer() // 401 invalid_token
			for (const token of [hugeUnlimited, hugeBudgeted]) {
				const controller = new AbortController()
				const res = await t.request(downloadPath('123', 'fd-huge.bin'), {
					headers: bearer(token),
					signal: controller.signal,
				})
				const reader = (res.body as ReadableStream<Uint8Array>).getReader()
				await reader.read()
				controller.abort()
				await reader.cancel().catch(() => {})
			}
		}
		const cached = valid === '0' ? 0 : 3 * 2
		const after = await pollUntil(
			() => openDescriptors(t.storageDir),
			(open) => open.length <= before.length + cached,
			3000,
		)
		const extra = [...after]
		for (const fd of before) extra.splice(extra.indexOf(fd), 1)
		const perFile = new Map<string, number>()
		for (const path of extra) perFile.set(path, (perFile.get(path) ?? 0) + 1)
		// At most the cache's two descriptors per file it opened, and only for files it opened.
		for (const [path, n] of perFile) {
			expect(['fd-big.bin', 'fd-huge.bin', 'fd-small.bin'].some((f) => path.endsWith(`/123/${f}`))).toBe(true)
			expect(n).toBeLessThanOrEqual(2)
		}
		expect(extra.length).toBeLessThanOrEqual(cached)
		await expectError(await get('fd-missing.bin', `${unlimited}x`), 401, 'invalid_token')
		// Shutdown closes what the cache holds.
		await t.deps.storage.close()
		expect(
			await pollUntil(
				() => openDescriptors(t.storageDir),
				(open) => open.length <= before.length,
				3000,
			),
		).toEqual(before)
	}, 15_000)
})
