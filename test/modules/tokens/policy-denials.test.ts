import { afterAll, beforeAll, expect, test } from 'bun:test'
import { bearer, downloadPath, makeTestApp, randomBytesOf, type TestApp } from '../../support/helpers'
import { pollUntil } from '../../support/poll'
import { query } from '../../support/resp'
import { openDownload } from '../downloads/held-download'

// docs/contract.md §3.4: download_gate_denials_total counts refusals by their
// code, so the policies' own refusals (token_not_yet_valid, ip_not_allowed,
// too_many_downloads) move it by exactly what happened, and nothing else does.

const MiB = 1024 * 1024

let t: TestApp
beforeAll(async () => {
	t = await makeTestApp({
		env: { MAX_CONCURRENT_DOWNLOADS_PER_USER: '1', RATE_LIMIT_DENIED: '100000/min', RATE_LIMIT_ISSUE: '100000/min' },
	})
	await t.putFile('u', 'big.mp4', randomBytesOf(64 * MiB))
	await t.putFile('u', 'small.mp4', 'small video')
})
afterAll(() => t.close())

/** Every series of download_gate_denials_total, by reason. */
async function denials(): Promise<Map<string, number>> {
	const text = await (await t.request('/metrics')).text()
	const out = new Map<string, number>()
	for (const [, reason, value] of text.matchAll(/^download_gate_denials_total\{reason="([^"]+)"\} (\S+)$/gm))
		out.set(reason ?? '', Number(value))
	return out
}

const get = async (token: string, file = 'small.mp4', method = 'GET') => {
	const res = await t.request(downloadPath('u', file), { method, headers: bearer(token) })
	const text = await res.text()
	return res.status >= 400 && method === 'GET'
		? `${res.status} ${(JSON.parse(text) as { error: string }).error}`
		: String(res.status)
}

test('the policies’ refusals move download_gate_denials_total by exactly what happened', async () => {
	const before = await denials()
	const nowS = Math.floor(t.clock.now() / 1000)

	const early = (await t.issue('u', 'small.mp4', `?ttl=600&not_before=${nowS + 60}`)).token
	expect(await get(early)).toBe('403 token_not_yet_valid')
	expect(await get(early)).toBe('403 token_not_yet_valid')
	// A HEAD is held back too (it would tell the file's validators).
	expect(await get(early, 'small.mp4', 'HEAD')).toBe('403')

	const elsewhere = (await t.issue('u', 'small.mp4', '?ip=10.0.0.0%2F8')).token
	for (let i = 0; i < 3; i++) expect(await get(elsewhere)).toBe('403 ip_not_allowed')
	const here = (await t.issue('u', 'small.mp4', '?ip=127.0.0.0%2F8')).token
	expect(await get(here)).toBe('200')

	// The user's one slot held by a body the client stopped reading.
	const token = (await t.issue('u', 'big.mp4')).token
	const held = await openDownload(t.baseUrl, downloadPath('u', 'big.mp4'), bearer(token))
	expect(held.status).toBe(200)
	held.hold()
	expect(await get(token, 'big.mp4')).toBe('429 too_many_downloads')
	// A HEAD needs no slot and is no refusal.
	expect(await get(token, 'big.mp4', 'HEAD')).toBe('200')
	held.abort()
	// Asked of Redis, not by downloading: a request that found the slot still held would be one more refusal.
	const redis = new URL(process.env.TEST_REDIS_URL ?? '')
	const slots = () =>
		query({ host: redis.hostname, port: Number(redis.port) }, ['ZCARD', `${t.config.redisKeyPrefix}dl:{u}`])
	expect(await pollUntil(slots, (n) => n === 0, 3000)).toBe(0)
	expect(await get(here)).toBe('200')

	t.clock.advance(60_000)
	expect(await get(early)).toBe('200')

	const after = await denials()
	const moved = new Map<string, number>()
	for (const [reason, value] of after) {
		const delta = value - (before.get(reason) ?? 0)
		if (delta !== 0) moved.set(reason, delta)
	}
	expect(Object.fromEntries(moved)).toEqual({ token_not_yet_valid: 3, ip_not_allowed: 3, too_many_downloads: 1 })
})
