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
			readonly accessKeyId?: string
			readonly secretAccessKey?: string
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
	if ((credentials.accessKeyId === undefined) !== (credentials.secretAccessKey === undefined))
		throw new ConfigError(
			credentials.accessKeyId === undefined ? 'S3_ACCESS_KEY_ID' : 'S3_SECRET_ACCESS_KEY',
			'an access key and its secret go together: set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY',
		)
	if (credentials.sessionToken !== undefined && credentials.accessKeyId === undefined)
		throw new ConfigError('S3_SESSION_TOKEN', 'needs S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY')
	if (given.has('S3_REDIRECT_TTL') && v.S3_REDIRECT !== 'unlimited')
		throw new ConfigError('S3_REDIRECT_TTL', 'only applies with S3_REDIRECT=unlimited')
	return {
		kind: 'bucket',
		bucket: v.S3_BUCKET,
		...(v.S3_ENDPOINT !== undefined ? { endpoint: v.S3_ENDPOINT } : {}),
		region: v.S3_REGION,
		...credentials,
		prefix: v.S3_PREFIX,
		virtualHostedStyle: v.S3_VIRTUAL_HOSTED_STYLE,
		redirectTtlS: v.S3_REDIRECT === 'unlimited' ? v.S3_REDIRECT_TTL : null,
	}
}
