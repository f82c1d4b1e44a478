import { expect, test } from 'bun:test'
import { createLogger } from '../src/log'
import { assertNoInternalErrors } from './support/helpers'

test('fields named like secrets are masked, on a child logger too; other fields are kept', () => {
	const lines: string[] = []
	const log = createLogger('info', (line) => lines.push(line))
	log.info('request', { token: 'eyJ.secret.sig', authorization: 'Bearer eyJ', api_key: 'k', user_id: 'u1' })
	log.child({ request_id: 'r1' }).warn('refused', { 'x-api-key': 'k2', password: 'p', secret: 's', cookie: 'c' })
	const [first, second] = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
	expect(first).toMatchObject({
		msg: 'request',
		level: 'info',
		token: '[redacted]',
		authorization: '[redacted]',
		api_key: '[redacted]',
		user_id: 'u1',
	})
	expect(second).toMatchObject({
		request_id: 'r1',
		'x-api-key': '[redacted]',
		password: '[redacted]',
		secret: '[redacted]',
		cookie: '[redacted]',
	})
	expect(lines.join('\n')).not.toMatch(/eyJ|"k2?"|"p"|"s"|"c"/)
})

test('below the level nothing is written, and enabled() says so', () => {
	const lines: string[] = []
	const log = createLogger('warn', (line) => lines.push(line))
	log.info('quiet', { a: 1 })
	expect(lines).toEqual([])
	expect(log.enabled('info')).toBe(false)
	expect(log.enabled('warn')).toBe(true)
})

test('the suite guard: a 500 internal_error in an app log fails its test; 503 store_unavailable does not', () => {
	const lines: string[] = []
	const log = createLogger('info', (line) => lines.push(line))
	log.warn('request failed', { request_id: 'a', code: 'store_unavailable' })
	expect(() => assertNoInternalErrors(lines)).not.toThrow()
	log.error('request failed', { request_id: 'b', code: 'internal_error', err: 'boom' })
	expect(() => assertNoInternalErrors(lines)).toThrow('1 request(s) answered 500 internal_error')
	expect(() => assertNoInternalErrors(lines, true)).not.toThrow()
})
