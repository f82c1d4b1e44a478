import { describe, expect, test } from 'bun:test'
import { type Env, loadConfig } from '../../src/config'
import { expectRefused } from './refused'

// STORAGE_DIR or S3_BUCKET (docs/contract.md §2, §6): one of the two, the
// bucket's settings checked against each other, the AWS_ spellings accepted.

const BUCKET: Env = { S3_BUCKET: 'originals', S3_ACCESS_KEY_ID: 'AKIAEXAMPLE', S3_SECRET_ACCESS_KEY: 'secret-key' }

describe('storage configuration', () => {
	test('by default files live in ./storage', () => {
		expect(loadConfig({}).storage).toEqual({ kind: 'disk', dir: './storage' })
	})

	test('S3_BUCKET chooses the bucket, with its defaults', () => {
		expect(loadConfig(BUCKET).storage).toEqual({
			kind: 'bucket',
			bucket: 'originals',
			region: 'us-east-1',
			accessKeyId: 'AKIAEXAMPLE',
			secretAccessKey: 'secret-key',
			prefix: '',
			virtualHostedStyle: false,
			redirectTtlS: null,
		})
	})

	test('every bucket setting is read', () => {
		const storage = loadConfig({
			...BUCKET,
			S3_ENDPOINT: 'http://minio:9000',
			S3_REGION: 'eu-central-1',
			S3_SESSION_TOKEN: 'session',
			S3_PREFIX: 'videos/',
			S3_VIRTUAL_HOSTED_STYLE: 'true',
			S3_REDIRECT: 'unlimited',
			S3_REDIRECT_TTL: '120',
		}).storage
		expect(storage).toEqual({
			kind: 'bucket',
			bucket: 'originals',
			endpoint: 'http://minio:9000',
			region: 'eu-central-1',
			accessKeyId: 'AKIAEXAMPLE',
			secretAccessKey: 'secret-key',
			sessionToken: 'session',
			prefix: 'videos/',
			virtualHostedStyle: true,
			redirectTtlS: 120,
		})
	})

	test('S3_REDIRECT=unlimited defaults to 60 s URLs; more than 300 s is refused', () => {
		const storage = loadConfig({ ...BUCKET, S3_REDIRECT: 'unlimited' }).storage
		expect(storage.kind === 'bucket' ? storage.redirectTtlS : 'disk').toBe(60)
		expectRefused({ ...BUCKET, S3_REDIRECT: 'unlimited', S3_REDIRECT_TTL: '301' }, 'S3_REDIRECT_TTL')
		expectRefused({ ...BUCKET, S3_REDIRECT: 'always' }, 'S3_REDIRECT')
	})

	test('the AWS_ names are accepted, and must agree with the S3_ ones when both are set', () => {
		const storage = loadConfig({
			S3_BUCKET: 'b',
			AWS_ACCESS_KEY_ID: 'aws-key',
			AWS_SECRET_ACCESS_KEY: 'aws-secret',
			AWS_SESSION_TOKEN: 'aws-session',
		}).storage
		expect(storage).toMatchObject({
			accessKeyId: 'aws-key',
			secretAccessKey: 'aws-secret',
			sessionToken: 'aws-session',
		})
		expect(loadConfig({ ...BUCKET, AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE' }).storage).toMatchObject({
			accessKeyId: 'AKIAEXAMPLE',
		})
		expectRefused({ ...BUCKET, AWS_ACCESS_KEY_ID: 'other' }, 'S3_ACCESS_KEY_ID', 'AWS_ACCESS_KEY_ID')
		const err = expectRefused({ ...BUCKET, AWS_SECRET_ACCESS_KEY: 'other-secret' }, 'S3_SECRET_ACCESS_KEY')
		// Secrets are never echoed, not even in a conflict.
		expect(err.message).not.toContain('other-secret')
		expect(err.message).not.toContain('secret-key')
	})

	test('STORAGE_DIR and S3_BUCKET together are refused', () => {
		expectRefused({ ...BUCKET, STORAGE_DIR: '/srv/files' }, 'S3_BUCKET', 'STORAGE_DIR')
	})

	test('a key without its secret (or the other way round), or a session token alone, is refused', () => {
		expectRefused({ S3_BUCKET: 'b', S3_ACCESS_KEY_ID: 'k' }, 'S3_SECRET_ACCESS_KEY')
		expectRefused({ S3_BUCKET: 'b', S3_SECRET_ACCESS_KEY: 's' }, 'S3_ACCESS_KEY_ID')
		expectRefused({ S3_BUCKET: 'b', S3_SESSION_TOKEN: 't' }, 'S3_ACCESS_KEY_ID')
	})

	test('credentials are required: every request is signed', () => {
		expectRefused({ S3_BUCKET: 'b' }, 'S3_ACCESS_KEY_ID', 'S3_BUCKET')
	})

	test.each([
		['S3_ENDPOINT', 'http://minio:9000'],
		['S3_ACCESS_KEY_ID', 'k'],
		['S3_SECRET_ACCESS_KEY', 's'],
		['S3_PREFIX', 'p/'],
		['S3_VIRTUAL_HOSTED_STYLE', 'true'],
		['S3_REDIRECT', 'unlimited'],
		['S3_REDIRECT_TTL', '30'],
	] as const)('%s without S3_BUCKET is refused (it would be silently ignored)', (name, value) => {
		expectRefused({ [name]: value }, name, 'S3_BUCKET')
	})

	test('redirects and per-user download slots exclude each other: a redirected body cannot hold a slot', () => {
		expectRefused(
			{ ...BUCKET, S3_REDIRECT: 'unlimited', MAX_CONCURRENT_DOWNLOADS_PER_USER: '2' },
			'S3_REDIRECT',
			'MAX_CONCURRENT_DOWNLOADS_PER_USER',
		)
	})

	test('S3_REDIRECT_TTL without S3_REDIRECT=unlimited is refused', () => {
		expectRefused({ ...BUCKET, S3_REDIRECT_TTL: '30' }, 'S3_REDIRECT_TTL', 'S3_REDIRECT')
	})

	test('the AWS_ names alone, without S3_BUCKET, are left to other tools', () => {
		expect(loadConfig({ AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' }).storage.kind).toBe('disk')
	})

	test('a malformed endpoint is refused', () => {
		expectRefused({ ...BUCKET, S3_ENDPOINT: 'minio:9000' }, 'S3_ENDPOINT')
		expectRefused({ ...BUCKET, S3_ENDPOINT: 'ftp://minio' }, 'S3_ENDPOINT')
	})
})
