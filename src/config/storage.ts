import { ConfigError } from './error'
import type { EnvValues, EnvVar } from './schema'

/** Where files live: a directory, or an S3-compatible bucket. Optional fields are absent when not configured. */
export type StorageConfig =
	| { readonly kind: 'disk'; readonly dir: string }
	| {
			readonly kind: 'bucket'
			readonly bucket: string
			readonly endpoint?: string
			readonly region: string
			readonly accessKeyId: string
			readonly secretAccessKey: string
			readonly sessionToken?: string
			readonly prefix: string
			readonly virtualHostedStyle: boolean
			/** Seconds of a redirect's presigned URL for unlimited tokens; null = always proxy. */
			readonly redirectTtlS: number | null
	  }

/** The S3 credential each pair of names sets; the S3_ and AWS_ spellings must not disagree. */
const CREDENTIALS = [
	['accessKeyId', 'S3_ACCESS_KEY_ID', 'AWS_ACCESS_KEY_ID'],
	['secretAccessKey', 'S3_SECRET_ACCESS_KEY', 'AWS_SECRET_ACCESS_KEY'],
	['sessionToken', 'S3_SESSION_TOKEN', 'AWS_SESSION_TOKEN'],
] as const satisfies readonly (readonly [string, EnvVar, EnvVar])[]

/** Variables that only mean something with `S3_BUCKET`; the AWS_ names may be set for other tools, so they are not here. */
const BUCKET_ONLY: readonly EnvVar[] = [
	'S3_ENDPOINT',
	'S3_ACCESS_KEY_ID',
	'S3_SECRET_ACCESS_KEY',
	'S3_SESSION_TOKEN',
	'S3_PREFIX',
	'S3_VIRTUAL_HOSTED_STYLE',
	'S3_REDIRECT',
	'S3_REDIRECT_TTL',
]

/** `STORAGE_DIR` or `S3_BUCKET` (never both) with the bucket's settings, each checked against the others. */
export function storageConfig(v: EnvValues, given: ReadonlySet<EnvVar>): StorageConfig {
	if (v.S3_BUCKET === undefined) {
		for (const name of BUCKET_ONLY)
			if (given.has(name)) throw new ConfigError(name, 'only applies with S3_BUCKET, which is not set')
		return { kind: 'disk', dir: v.STORAGE_DIR }
	}
	if (given.has('STORAGE_DIR'))
		throw new ConfigError('S3_BUCKET', 'conflicts with STORAGE_DIR: files live in a directory or a bucket, not both')
	const credentials: { accessKeyId?: string; secretAccessKey?: string; sessionToken?: string } = {}
	for (const [field, s3Name, awsName] of CREDENTIALS) {
		const s3 = v[s3Name]
		const aws = v[awsName]
		if (s3 !== undefined && aws !== undefined && s3 !== aws)
			throw new ConfigError(s3Name, `and ${awsName} are both set and differ; give one of them`)
		const value = s3 ?? aws
		if (value !== undefined) credentials[field] = value
	}
	// Every request is signed with a key (Bun's S3 client has no instance-role or anonymous mode).
	const { accessKeyId, secretAccessKey, sessionToken } = credentials
	if (accessKeyId === undefined)
		throw new ConfigError('S3_ACCESS_KEY_ID', 'is required with S3_BUCKET (or AWS_ACCESS_KEY_ID), with its secret')
	if (secretAccessKey === undefined)
		throw new ConfigError('S3_SECRET_ACCESS_KEY', 'is required with S3_BUCKET (or AWS_SECRET_ACCESS_KEY)')
	if (given.has('S3_REDIRECT_TTL') && v.S3_REDIRECT !== 'unlimited')
		throw new ConfigError('S3_REDIRECT_TTL', 'only applies with S3_REDIRECT=unlimited')
	if (v.S3_REDIRECT === 'unlimited' && v.MAX_CONCURRENT_DOWNLOADS_PER_USER > 0)
		throw new ConfigError(
			'S3_REDIRECT',
			'cannot be unlimited with MAX_CONCURRENT_DOWNLOADS_PER_USER: a redirected body is not the service’s, so no slot can be held for it',
		)
	return {
		kind: 'bucket',
		bucket: v.S3_BUCKET,
		...(v.S3_ENDPOINT !== undefined ? { endpoint: v.S3_ENDPOINT } : {}),
		region: v.S3_REGION,
		accessKeyId,
		secretAccessKey,
		...(sessionToken !== undefined ? { sessionToken } : {}),
		prefix: v.S3_PREFIX,
		virtualHostedStyle: v.S3_VIRTUAL_HOSTED_STYLE,
		redirectTtlS: v.S3_REDIRECT === 'unlimited' ? v.S3_REDIRECT_TTL : null,
	}
}
