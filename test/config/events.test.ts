import { describe, expect, test } from 'bun:test'
import { type Env, loadConfig } from '../../src/config'
import { expectRefused } from './refused'

// EVENTS and WEBHOOK_* (docs/contract.md §2, §7): events need Redis, webhooks
// need events and a secret, and nothing that would be ignored is accepted.

const REDIS: Env = { REDIS_URL: 'redis://127.0.0.1:6379' }
const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`
const HOOKS: Env = { ...REDIS, WEBHOOK_URLS: 'https://app.example.com/hooks', WEBHOOK_SECRET: SECRET }

describe('events and webhooks configuration', () => {
	test('events are on with Redis and off with the in-memory store, unless asked otherwise', () => {
		expect(loadConfig(REDIS).events).toEqual({ enabled: true, maxLen: 1_000_000 })
		expect(loadConfig({}).events.enabled).toBe(false)
		expect(loadConfig({ ...REDIS, EVENTS: 'off' }).events.enabled).toBe(false)
		expect(loadConfig({ ...REDIS, EVENTS_MAX_LEN: '5000' }).events.maxLen).toBe(5000)
	})

	test('EVENTS=on without Redis is refused, as is a stream length that would be ignored', () => {
		expectRefused({ EVENTS: 'on' }, 'EVENTS')
		expectRefused({ EVENTS_MAX_LEN: '5000' }, 'EVENTS_MAX_LEN', 'EVENTS')
		expectRefused({ ...REDIS, EVENTS: 'sometimes' }, 'EVENTS')
	})

	test('webhooks with their defaults: every type but download.denied, 10 s attempts, 24 h before dead letters', () => {
		expect(loadConfig(HOOKS).webhooks).toEqual({
			urls: ['https://app.example.com/hooks'],
			secret: SECRET,
			events: [
				'token.issued',
				'token.revoked',
				'download.started',
				'download.completed',
				'download.broken',
				'token.used_up',
			],
			timeoutS: 10,
			maxAgeS: 86_400,
		})
		expect(loadConfig(REDIS).webhooks).toBeNull()
	})

	test('webhook settings are read', () => {
		const webhooks = loadConfig({
			...HOOKS,
			WEBHOOK_URLS: 'https://a.example/in, http://b.internal:8080/hooks',
			WEBHOOK_EVENTS: 'download.completed,download.denied,download.completed',
			WEBHOOK_TIMEOUT_S: '3',
			WEBHOOK_MAX_AGE: '90m',
		}).webhooks
		expect(webhooks).toMatchObject({
			urls: ['https://a.example/in', 'http://b.internal:8080/hooks'],
			events: ['download.completed', 'download.denied'],
			timeoutS: 3,
			maxAgeS: 5400,
		})
		expect(loadConfig({ ...HOOKS, WEBHOOK_MAX_AGE: '7d' }).webhooks?.maxAgeS).toBe(604_800)
		expect(loadConfig({ ...HOOKS, WEBHOOK_MAX_AGE: '3600' }).webhooks?.maxAgeS).toBe(3600)
	})

	test.each([
		[{ ...HOOKS, WEBHOOK_SECRET: undefined }, 'WEBHOOK_SECRET'],
		[{ ...HOOKS, WEBHOOK_SECRET: 'plain-secret' }, 'WEBHOOK_SECRET'],
		[{ ...HOOKS, WEBHOOK_SECRET: 'whsec_c2hvcnQ=' }, 'WEBHOOK_SECRET'],
		[{ ...HOOKS, WEBHOOK_URLS: 'ftp://a.example/in' }, 'WEBHOOK_URLS'],
		[{ ...HOOKS, WEBHOOK_URLS: 'not a url' }, 'WEBHOOK_URLS'],
		[{ ...HOOKS, WEBHOOK_EVENTS: 'download.finished' }, 'WEBHOOK_EVENTS'],
		[{ ...HOOKS, WEBHOOK_EVENTS: ',' }, 'WEBHOOK_EVENTS'],
		[{ ...HOOKS, WEBHOOK_TIMEOUT_S: '0' }, 'WEBHOOK_TIMEOUT_S'],
		[{ ...HOOKS, WEBHOOK_MAX_AGE: 'forever' }, 'WEBHOOK_MAX_AGE'],
		[{ ...HOOKS, WEBHOOK_MAX_AGE: '30s' }, 'WEBHOOK_MAX_AGE'],
		[{ ...HOOKS, EVENTS: 'off' }, 'WEBHOOK_URLS'],
		[{ ...HOOKS, REDIS_URL: undefined }, 'WEBHOOK_URLS'],
		[{ ...REDIS, WEBHOOK_SECRET: SECRET }, 'WEBHOOK_SECRET'],
		[{ ...REDIS, WEBHOOK_EVENTS: 'token.issued' }, 'WEBHOOK_EVENTS'],
		[{ ...REDIS, WEBHOOK_TIMEOUT_S: '5' }, 'WEBHOOK_TIMEOUT_S'],
		[{ ...REDIS, WEBHOOK_MAX_AGE: '1h' }, 'WEBHOOK_MAX_AGE'],
	] as [Env, 'WEBHOOK_SECRET'][])('%o is refused naming %s', (env, variable) => {
		const err = expectRefused(env, variable)
		// Neither the secret nor a URL (it may carry credentials) is ever echoed.
		expect(err.message).not.toContain(SECRET.slice(6, 20))
		expect(err.message).not.toContain('a.example')
	})
})
