import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { endpointLabel } from '../../../src/modules/events/webhooks'
import {
	API_KEY,
	bearer,
	downloadPath,
	makeTestApp,
	randomBytesOf,
	serviceEnv,
	TEST_SECRET,
	type TestApp,
} from '../../support/helpers'
import { pollUntil } from '../../support/poll'
import { startServerProcess } from '../../support/server-process'
import { startWebhookReceiver } from '../../support/webhook-receiver'
import { ALL_TYPES, connectRedis, FAST_TUNING, WEBHOOK_SECRET, waitForGroups } from '../events/fixtures'
import { parseScrape, type Scrape } from './prometheus'

// docs/contract.md §3.4 /metrics: each counter moves by exactly what the requests did,
// read back through a real Prometheus text parser.

const DOWNLOAD_ROUTE = '/api/download/:user_id/:filename'
const MiB = 1024 * 1024

describe('/metrics counts what happened', () => {
	let t: TestApp
	let small: Uint8Array<ArrayBuffer>
	const scrape = async (): Promise<Scrape> => {
		const res = await t.request('/metrics')
		expect(res.status).toBe(200)
		expect(res.headers.get('content-type')).toContain('text/plain')
		return parseScrape(await res.text())
	}

	beforeAll(async () => {
		t = await makeTestApp({ env: { RATE_LIMIT_DENIED: '100000/min' } })
		small = await t.putFile('u', 'small.mp4', randomBytesOf(10_000))
		await t.putFile('u', 'big.mp4', randomBytesOf(20 * MiB))
	})
	afterAll(() => t.close())

	test('issue, full, range, 304, broken and refused: each counter moves by exactly that', async () => {
		const before = await scrape()
		const unlimited = await t.issue('u', 'small.mp4')
		const budgeted = await t.issue('u', 'big.mp4', '?max_uses=1')

		const full = await t.request(downloadPath('u', 'small.mp4'), { headers: bearer(unlimited.token) })
		expect(full.status).toBe(200)
		const etag = full.headers.get('etag') ?? ''
		expect((await full.arrayBuffer()).byteLength).toBe(small.length)
		const range = await t.request(downloadPath('u', 'small.mp4'), {
			headers: { ...bearer(unlimited.token), Range: 'bytes=0-99' },
		})
		expect(range.status).toBe(206)
		await range.arrayBuffer()
		const notModified = await t.request(downloadPath('u', 'small.mp4'), {
			headers: { ...bearer(unlimited.token), 'If-None-Match': etag },
		})
		expect(notModified.status).toBe(304)

		// A budgeted 20 MiB body cut after its first chunk.
		const aborter = new AbortController()
		const broken = await t.request(downloadPath('u', 'big.mp4'), {
			headers: bearer(budgeted.token),
			signal: aborter.signal,
		})
		expect(broken.status).toBe(200)
		await broken.body?.getReader().read()
		aborter.abort()

		const forged = await t.request(downloadPath('u', 'small.mp4'), { headers: bearer('a.b.c') })
		expect(forged.status).toBe(401)
		const missing = await t.request(downloadPath('u', 'small.mp4'))
		expect(missing.status).toBe(401)

		// The broken body's settle gives bytes back; its bytes_left says exactly how many.
		const bytesLeft = await pollUntil(
			async () => {
				const list = (await (await t.request('/api/users/u/tokens')).json()) as {
					tokens: { jti: string; bytes_left: number | null }[]
				}
				return list.tokens.find((x) => x.jti === budgeted.jti)?.bytes_left ?? 0
			},
			(left) => left > 0,
			2000,
			20,
		)
		expect(bytesLeft).toBeGreaterThan(0)

		const after = await scrape()
		const delta = (name: string, labels: Record<string, string> = {}) =>
			after.value(name, labels) - before.value(name, labels)
		expect(delta('download_gate_tokens_issued_total', { budgeted: 'false' })).toBe(1)
		expect(delta('download_gate_tokens_issued_total', { budgeted: 'true' })).toBe(1)
		expect(delta('download_gate_downloads_total', { result: 'full', budgeted: 'false' })).toBe(1)
		expect(delta('download_gate_downloads_total', { result: 'partial', budgeted: 'false' })).toBe(1)
		expect(delta('download_gate_downloads_total', { result: 'not_modified', budgeted: 'false' })).toBe(1)
		expect(delta('download_gate_downloads_total', { result: 'broken', budgeted: 'true' })).toBe(1)
		expect(delta('download_gate_downloads_total', { result: 'full', budgeted: 'true' })).toBe(0)
		expect(delta('download_gate_bytes_sent_total', { budgeted: 'false' })).toBe(small.length + 100)
		// What the cut body handed over is exactly what did not come back (beyond the allowance).
		expect(delta('download_gate_budget_bytes_returned_total')).toBe(bytesLeft)
		expect(delta('download_gate_denials_total', { reason: 'invalid_token' })).toBe(1)
		expect(delta('download_gate_denials_total', { reason: 'missing_token' })).toBe(1)
		expect(
			delta('download_gate_http_request_duration_seconds_count', { route: DOWNLOAD_ROUTE, status_class: '4xx' }),
		).toBe(2)
		expect(
			delta('download_gate_http_request_duration_seconds_count', { route: DOWNLOAD_ROUTE, status_class: '2xx' }),
		).toBe(3)
		expect(after.value('download_gate_store_up')).toBe(1)
		expect(
			after.value('download_gate_store_command_duration_seconds_count', { command: 'take', outcome: 'ok' }),
		).toBeGreaterThan(0)
		expect(after.names).toContain('download_gate_downloads_in_flight')
		expect(after.names).toContain('download_gate_process_resident_memory_bytes')
	})

	test('every response carries X-Request-Id: a tame one echoed, anything else replaced', async () => {
		const echoed = await t.request('/health', { headers: { 'X-Request-Id': 'abc-123.X:y_z' } })
		expect(echoed.headers.get('x-request-id')).toBe('abc-123.X:y_z')
		for (const bad of ['a'.repeat(129), 'has space', 'semi;colon', '']) {
			const res = await t.request('/nope', { headers: { 'X-Request-Id': bad } })
			expect(res.status).toBe(404)
			const id = res.headers.get('x-request-id') ?? ''
			expect(id).toMatch(/^[A-Za-z0-9._:-]{1,128}$/)
			expect(id).not.toBe(bad)
		}
		const refused = await t.request(downloadPath('u', 'small.mp4'), { headers: bearer('x.y.z') })
		expect(refused.status).toBe(401)
		expect(refused.headers.get('x-request-id')).toMatch(/^[A-Za-z0-9._:-]{1,128}$/)
	})
})

describe('/metrics: lifecycle events and webhook deliveries', () => {
	test('events written count by type; webhook attempts, their latency and the backlog by endpoint', async () => {
		const r = startWebhookReceiver(WEBHOOK_SECRET)
		const redis = await connectRedis()
		const t = await makeTestApp({
			env: { WEBHOOK_URLS: r.url, WEBHOOK_SECRET, WEBHOOK_EVENTS: ALL_TYPES.join(','), WEBHOOK_TIMEOUT_S: '1' },
			webhookTuning: FAST_TUNING,
		})
		try {
			await waitForGroups(redis, `${t.config.redisKeyPrefix}events`, [r.url])
			const endpoint = endpointLabel(r.url)
			const scrape = async () => parseScrape(await (await t.request('/metrics')).text())
			const before = await scrape()
			await t.putFile('u', 'v.mp4', randomBytesOf(200_000))
			// Written by the scripts: issued, started, completed, used_up.
			const budgeted = await t.issue('u', 'v.mp4', '?max_uses=1')
			expect(
				(await (await t.request(downloadPath('u', 'v.mp4'), { headers: bearer(budgeted.token) })).arrayBuffer())
					.byteLength,
			).toBe(200_000)
			// Written by the instance: an unlimited token's started and completed, one denial.
			const unlimited = await t.issue('u', 'v.mp4')
			expect(
				(await (await t.request(downloadPath('u', 'v.mp4'), { headers: bearer(unlimited.token) })).arrayBuffer())
					.byteLength,
			).toBe(200_000)
			expect((await t.request(downloadPath('u', 'v.mp4'), { headers: bearer('a.b.c') })).status).toBe(401)
			const expected = {
				'token.issued': 2,
				'download.started': 2,
				'download.completed': 2,
				'token.used_up': 1,
				'download.denied': 1,
			}
			await pollUntil(
				() => r.delivered().length,
				(n) => n >= 8,
				5000,
				20,
			)
			const after = await pollUntil(
				scrape,
				(s) =>
					s.value('download_gate_webhook_attempts_total', { endpoint, outcome: 'delivered' }) >= 8 &&
					s.value('download_gate_webhook_backlog', { endpoint }) === 0,
				3000,
				50,
			)
			const delta = (name: string, labels: Record<string, string>) =>
				after.value(name, labels) - before.value(name, labels)
			for (const [type, n] of Object.entries(expected))
				expect({ type, written: delta('download_gate_events_written_total', { type }) }).toEqual({ type, written: n })
			expect(delta('download_gate_events_dropped_total', {})).toBe(0)
			expect(r.delivered()).toHaveLength(8)
			expect(after.value('download_gate_webhook_attempts_total', { endpoint, outcome: 'delivered' })).toBe(8)
			expect(after.value('download_gate_webhook_attempt_duration_seconds_count', { endpoint })).toBe(8)
			expect(after.value('download_gate_webhook_backlog', { endpoint })).toBe(0)
			expect(after.value('download_gate_webhook_oldest_event_age_seconds', { endpoint })).toBe(0)
			expect(after.names).toContain('download_gate_webhook_dead_letters_total')
			expect(after.names).toContain('download_gate_webhook_dropped_total')
		} finally {
			await t.close()
			redis.disconnect()
			await r.stop()
		}
	})
})

describe('logs', () => {
	test('the access line carries the request id; no token, API key or secret appears anywhere', async () => {
		const t = await makeTestApp({ env: { API_KEYS: API_KEY, ISSUE_AUTH: 'api-key', LOG_LEVEL: 'debug' } })
		try {
			await t.putFile('u', 'v.mp4', 'video')
			const issued = await t.request('/api/get-download-token/u/v.mp4', {
				headers: { 'X-API-Key': API_KEY, 'X-Request-Id': 'issue-1' },
			})
			const { token, jti } = (await issued.json()) as { token: string; jti: string }
			const ok = await t.request(downloadPath('u', 'v.mp4'), { headers: { ...bearer(token), 'X-Request-Id': 'dl-1' } })
			expect(await ok.text()).toBe('video')
			const bad = await t.request(downloadPath('u', 'v.mp4'), {
				headers: { ...bearer(`${token}x`), 'X-Request-Id': 'dl-2' },
			})
			expect(bad.status).toBe(401)
			await Bun.sleep(50) // access lines are written after the response
			const lines = t.logLines.map((l) => JSON.parse(l) as Record<string, unknown>)
			const line = (id: string) => lines.find((l) => l.request_id === id && l.msg === 'request')
			expect(line('issue-1')).toMatchObject({
				method: 'GET',
				route: '/api/get-download-token/:user_id/:filename',
				status: 200,
				user_id: 'u',
				filename: 'v.mp4',
				ip: '127.0.0.1',
			})
			expect(line('dl-1')).toMatchObject({
				method: 'GET',
				route: '/api/download/:user_id/:filename',
				status: 200,
				user_id: 'u',
				filename: 'v.mp4',
				jti,
				bytes: 5,
			})
			expect(line('dl-2')).toMatchObject({ status: 401, code: 'invalid_token' })
			const all = t.logLines.join('\n')
			for (const secret of [token, token.split('.')[2] ?? '', API_KEY, TEST_SECRET]) expect(all).not.toContain(secret)
		} finally {
			await t.close()
		}
	})
})

describe('WORKERS=2', () => {
	test('one scrape counts the requests of both workers, and METRICS_TOKEN guards it', async () => {
		const metricsToken = 'metrics-token-0123456789'
		const storage = await mkdtemp(join(tmpdir(), 'dlg-workers-'))
		await mkdir(join(storage, 'u'))
		await writeFile(join(storage, 'u', 'v.mp4'), 'video')
		const server = await startServerProcess(
			serviceEnv(storage, {
				WORKERS: '2',
				METRICS_TOKEN: metricsToken,
				RATE_LIMIT_ISSUE: '100000/min',
				LOG_LEVEL: 'warn',
			}),
		)
		try {
			await pollUntil(() => server.output().includes('"worker":true'), Boolean, 2500)
			// Fresh connections spread over both processes; the generated request ids name the process.
			const processes = new Set<string>()
			const N = 40
			for (let i = 0; i < N; i++) {
				const res = await fetch(`${server.url}/api/get-download-token/u/v.mp4`, {
					headers: { Connection: 'close' },
				})
				expect(res.status).toBe(200)
				processes.add((res.headers.get('x-request-id') ?? '').split('-')[0] ?? '')
				await res.arrayBuffer()
			}
			expect(processes.size).toBe(2)
			expect((await fetch(`${server.url}/metrics`)).status).toBe(401)
			for (let i = 0; i < 4; i++) {
				const res = await fetch(`${server.url}/metrics`, {
					headers: { Authorization: `Bearer ${metricsToken}`, Connection: 'close' },
				})
				expect(res.status).toBe(200)
				const scrape = parseScrape(await res.text())
				expect(scrape.value('download_gate_tokens_issued_total', { budgeted: 'false' })).toBe(N)
			}
		} finally {
			await server.stop()
			await rm(storage, { recursive: true, force: true })
		}
	})
})
