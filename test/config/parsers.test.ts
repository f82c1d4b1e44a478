import { describe, expect, test } from 'bun:test'
import { loadConfig, parseBytes, parseRateLimit } from '../../src/config'
import { expectRefused } from './refused'

// Proves the value parsers TypeBox cannot express: sizes, rate limits, origins,
// URLs and secret lengths, on their own and through the variables that use them.

describe('parseBytes', () => {
	test.each([
		['8MiB', 8_388_608],
		['8mib', 8_388_608],
		['8 MiB', 8_388_608],
		[' 8MiB ', 8_388_608],
		['500kb', 500_000],
		['500KB', 500_000],
		['1KiB', 1024],
		['1kib', 1024],
		['2mb', 2_000_000],
		['1GiB', 1_073_741_824],
		['1gb', 1_000_000_000],
		['12b', 12],
		['12B', 12],
		['1048576', 1_048_576],
		['0', 0],
		['007', 7],
		['9007199254740991', 9_007_199_254_740_991],
		['8388607GiB', 8_388_607 * 1024 ** 3],
	])('%p is %p bytes', (raw, bytes) => {
		expect(parseBytes(raw)).toBe(bytes)
	})

	test.each([
		'',
		'   ',
		'MiB',
		'8 parsecs',
		'8MiBs',
		'1.5MiB',
		'-1',
		'-1MiB',
		'+1',
		'0x10',
		'1e6',
		'8 MiB extra',
		'8MiB8',
		'MiB8',
		'\uff18MiB',
		'9007199254740992',
		'99999999999999999999',
		'8388608GiB',
	])('%p is not a size', (raw) => {
		expect(parseBytes(raw)).toBeNull()
	})
})

describe('parseRateLimit', () => {
	test.each([
		['60/min', { limit: 60, windowS: 60 }],
		['30/min', { limit: 30, windowS: 60 }],
		['30/10s', { limit: 30, windowS: 10 }],
		['1000/hour', { limit: 1000, windowS: 3600 }],
		['5/s', { limit: 5, windowS: 1 }],
		['5/sec', { limit: 5, windowS: 1 }],
		['2/h', { limit: 2, windowS: 3600 }],
		['2/m', { limit: 2, windowS: 60 }],
		['10/5min', { limit: 10, windowS: 300 }],
		['60 / min', { limit: 60, windowS: 60 }],
		[' 60/min ', { limit: 60, windowS: 60 }],
		['60/MIN', { limit: 60, windowS: 60 }],
	])('%p is parsed', (raw, expected) => {
		expect(parseRateLimit(raw)).toEqual(expected)
	})

	test.each([
		'',
		'fast',
		'60',
		'60/',
		'/min',
		'60/10',
		'0/min',
		'60/0s',
		'-1/min',
		'1.5/min',
		'60/parsec',
		'60/min/extra',
		'60 per min',
		'60/-1s',
	])('%p is not a rate limit', (raw) => {
		expect(parseRateLimit(raw)).toBeNull()
	})
})

describe('loadConfig: parsed variables', () => {
	test('RATE_LIMIT_ISSUE "fast" is refused', () => {
		expectRefused({ RATE_LIMIT_ISSUE: 'fast' }, 'RATE_LIMIT_ISSUE')
	})

	test('RATE_LIMIT_DENIED "0/min" is refused', () => {
		expectRefused({ RATE_LIMIT_DENIED: '0/min' }, 'RATE_LIMIT_DENIED')
	})

	test('custom rate limits are parsed', () => {
		const config = loadConfig({ RATE_LIMIT_ISSUE: '100/10s', RATE_LIMIT_DENIED: '1000/hour' })
		expect(config.rateLimitIssue).toEqual({ limit: 100, windowS: 10 })
		expect(config.rateLimitDenied).toEqual({ limit: 1000, windowS: 3600 })
	})

	test('RESUME_ALLOWANCE "8 parsecs" is refused', () => {
		expectRefused({ RESUME_ALLOWANCE: '8 parsecs' }, 'RESUME_ALLOWANCE')
	})

	test('RESUME_ALLOWANCE accepts units and plain bytes', () => {
		expect(loadConfig({ RESUME_ALLOWANCE: '512KiB' }).resumeAllowanceBytes).toBe(524_288)
		expect(loadConfig({ RESUME_ALLOWANCE: '1048576' }).resumeAllowanceBytes).toBe(1_048_576)
		expect(loadConfig({ RESUME_ALLOWANCE: '0' }).resumeAllowanceBytes).toBe(0)
	})

	test.each(['not a url', 'https://app.example.com/path', 'app.example.com', 'https://a.example.com,nope'])(
		'CORS_ORIGINS %p is refused',
		(origins) => {
			expectRefused({ CORS_ORIGINS: origins }, 'CORS_ORIGINS')
		},
	)

	test('CORS_ORIGINS is a list of origins, trailing slashes dropped', () => {
		expect(loadConfig({ CORS_ORIGINS: 'https://a.example.com, http://localhost:5173/' }).corsOrigins).toEqual([
			'https://a.example.com',
			'http://localhost:5173',
		])
		expect(loadConfig({ CORS_ORIGINS: '*' }).corsOrigins).toBe('*')
	})

	test('PUBLIC_BASE_URL loses its trailing slash', () => {
		expect(loadConfig({ PUBLIC_BASE_URL: 'https://files.example.com/' }).publicBaseUrl).toBe(
			'https://files.example.com',
		)
		expect(loadConfig({ PUBLIC_BASE_URL: 'https://example.com/dl//' }).publicBaseUrl).toBe('https://example.com/dl')
		expect(loadConfig({ PUBLIC_BASE_URL: 'http://localhost:3000' }).publicBaseUrl).toBe('http://localhost:3000')
	})

	test.each(['files.example.com', 'ftp://files.example.com', 'not a url'])('PUBLIC_BASE_URL %p is refused', (base) => {
		expectRefused({ PUBLIC_BASE_URL: base }, 'PUBLIC_BASE_URL')
	})
})

describe('METRICS_TOKEN', () => {
	test('is null when unset and kept when at least 16 bytes', () => {
		expect(loadConfig({}).metricsToken).toBeNull()
		expect(loadConfig({ METRICS_TOKEN: 'm'.repeat(16) }).metricsToken).toBe('m'.repeat(16))
	})

	test('a shorter token is refused without printing it', () => {
		const err = expectRefused({ METRICS_TOKEN: 'short-token-15b' }, 'METRICS_TOKEN')
		expect(err.message).not.toContain('short-token-15b')
	})
})
