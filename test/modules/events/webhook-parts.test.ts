import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { Webhook } from 'standardwebhooks'
import { backoffDelay, retryAfterMs } from '../../../src/modules/events/webhook-backoff'
import { parseEvent } from '../../../src/modules/events/webhook-event'
import { createWebhookSigner } from '../../../src/modules/events/webhook-signer'
import { compareStreamIds } from '../../../src/modules/events/webhook-stream'
import { endpointLabel, webhookGroupName } from '../../../src/modules/events/webhooks'
import { WEBHOOK_SECRET } from './fixtures'

describe('backoff', () => {
	const policy = { baseMs: 1000, capMs: 300_000 }

	test('failure k waits within [d/2, d], d = min(cap, base·2^(k-1))', () => {
		fc.assert(
			fc.property(fc.integer({ min: 1, max: 80 }), fc.double({ min: 0, max: 1, noNaN: true }), (k, r) => {
				const d = Math.min(policy.capMs, policy.baseMs * 2 ** (k - 1))
				const wait = backoffDelay(k, policy, () => r)
				expect(wait).toBeGreaterThanOrEqual(d / 2)
				expect(wait).toBeLessThanOrEqual(d)
			}),
		)
	})

	test('while twice the ceiling stays within the cap (k ≤ 8 here), the next wait is never shorter, whatever the jitter', () => {
		fc.assert(
			fc.property(
				fc.integer({ min: 1, max: 8 }),
				fc.double({ min: 0, max: 1, noNaN: true }),
				fc.double({ min: 0, max: 1, noNaN: true }),
				(k, r1, r2) => {
					expect(backoffDelay(k + 1, policy, () => r2)).toBeGreaterThanOrEqual(backoffDelay(k, policy, () => r1))
				},
			),
		)
	})

	test('the production schedule: 0.5-1 s, 1-2 s, 2-4 s … capped at 2.5-5 min', () => {
		expect(backoffDelay(1, policy, () => 0)).toBe(500)
		expect(backoffDelay(1, policy, () => 1)).toBe(1000)
		expect(backoffDelay(3, policy, () => 1)).toBe(4000)
		expect(backoffDelay(30, policy, () => 0)).toBe(150_000)
		expect(backoffDelay(1000, policy, () => 1)).toBe(300_000)
	})

	test('Retry-After as seconds or an HTTP date; anything else is ignored', () => {
		const now = Date.parse('2026-01-01T00:00:00Z')
		expect(retryAfterMs('120', now)).toBe(120_000)
		expect(retryAfterMs('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000)
		expect(retryAfterMs('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0)
		expect(retryAfterMs('soon', now)).toBeNull()
		expect(retryAfterMs('-5', now)).toBeNull()
		expect(retryAfterMs(null, now)).toBeNull()
	})
})

describe('signing', () => {
	const body = JSON.stringify({ id: 'evt_1', type: 'token.issued', timestamp: '2026-01-01T00:00:00.000Z', data: {} })

	test('what the signer sends verifies with the standardwebhooks package; a changed byte or id does not', () => {
		const headers = createWebhookSigner(WEBHOOK_SECRET).headers('evt_1', Date.now(), body)
		const receiver = new Webhook(WEBHOOK_SECRET)
		expect(receiver.verify(body, { ...headers })).toEqual(JSON.parse(body))
		expect(headers['webhook-id']).toBe('evt_1')
		expect(headers['content-type']).toBe('application/json')
		expect(() => receiver.verify(body.replace('evt_1', 'evt_2'), { ...headers })).toThrow('No matching signature')
		expect(() => receiver.verify(body, { ...headers, 'webhook-id': 'evt_2' })).toThrow('No matching signature')
		const other = new Webhook(`whsec_${Buffer.from('another secret of 32 bytes......').toString('base64')}`)
		expect(() => other.verify(body, { ...headers })).toThrow('No matching signature')
	})

	test('webhook-timestamp is the attempt time in seconds (a redelivery signs afresh, never refused as a replay)', () => {
		const signer = createWebhookSigner(WEBHOOK_SECRET)
		const at = Date.parse('2026-03-04T05:06:07.890Z')
		expect(signer.headers('evt_1', at, body)['webhook-timestamp']).toBe(String(Math.floor(at / 1000)))
		const later = signer.headers('evt_1', at + 60_000, body)
		expect(later['webhook-id']).toBe('evt_1')
		expect(later['webhook-signature']).not.toBe(signer.headers('evt_1', at, body)['webhook-signature'])
	})

	test('a secret that is not whsec_<base64> is refused', () => {
		expect(() => createWebhookSigner('whsec_')).toThrow('webhook secret is not whsec_<base64>')
		expect(() => createWebhookSigner('whsec_not*base64')).toThrow('webhook secret is not whsec_<base64>')
	})
})

describe('entries and names', () => {
	test('an entry becomes { id, type, timestamp, data } with data parsed, field order kept', () => {
		const data = '{"jti":"j","user_id":"u","filename":"a b.mp4","bytes":12}'
		const parsed = parseEvent('1700000000000-0', [
			'id',
			'evt_1',
			'type',
			'download.completed',
			'timestamp',
			'2026-01-01T00:00:00.123Z',
			'data',
			data,
		])
		expect(parsed).toEqual({
			ok: true,
			event: {
				id: 'evt_1',
				type: 'download.completed',
				happenedAtMs: Date.parse('2026-01-01T00:00:00.123Z'),
				body: `{"id":"evt_1","type":"download.completed","timestamp":"2026-01-01T00:00:00.123Z","data":${data}}`,
			},
		})
	})

	test('entries missing a field, or whose data is not a JSON object, are malformed; an unreadable timestamp ages from the stream id', () => {
		expect(parseEvent('1-0', ['id', 'e', 'type', 't', 'data', '{}'])).toMatchObject({ ok: false })
		expect(parseEvent('1-0', ['id', 'e', 'type', 't', 'timestamp', 'x', 'data', '[1]'])).toEqual({
			ok: false,
			error: 'malformed entry: data is not a JSON object',
		})
		expect(parseEvent('1700000000000-3', ['id', 'e', 'type', 't', 'timestamp', 'x', 'data', '{}'])).toMatchObject({
			ok: true,
			event: { happenedAtMs: 1700000000000 },
		})
	})

	test('stream ids compare numerically, not as text', () => {
		expect(compareStreamIds('999-0', '1000-0')).toBe(-1)
		expect(compareStreamIds('1000-10', '1000-9')).toBe(1)
		expect(compareStreamIds('1000-1', '1000-1')).toBe(0)
	})

	test('an endpoint is named without credentials, query or fragment; its group by a hash of the exact URL', () => {
		expect(endpointLabel('https://user:pw@hooks.example.com:8443/in/dlg?token=abc#x')).toBe(
			'https://hooks.example.com:8443/in/dlg',
		)
		expect(webhookGroupName('https://a.example/h')).toMatch(/^webhooks:[0-9a-f]{12}$/)
		expect(webhookGroupName('https://a.example/h')).toBe(webhookGroupName('https://a.example/h'))
		expect(webhookGroupName('https://a.example/h')).not.toBe(webhookGroupName('https://a.example/h?v=2'))
	})
})
