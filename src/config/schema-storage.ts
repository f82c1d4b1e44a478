import { Type } from '@sinclair/typebox'
import { flag, integer, oneOf, parsed, text } from './kinds'
import { fractionalSeconds, httpUrl } from './parsers'

const { Optional } = Type

const S3_REDIRECT_MODES = ['off', 'unlimited'] as const

/** Where the files are: a directory, or an S3-compatible bucket (docs/contract.md §6). In README order; schema.ts joins the groups. */
export const STORAGE_VARS = {
	STORAGE_DIR: text({
		default: './storage',
		description:
			'a file is `<STORAGE_DIR>/<user_id>/<filename>`; created if missing. Each download opens the file once and serves that descriptor (Linux `/proc/self/fd`); lookups are synchronous for speed: meant for local disks, not slow network filesystems',
	}),
	OPEN_FILE_CACHE_VALID: parsed(fractionalSeconds, {
		default: '1',
		description:
			'seconds a checked file serves later requests for it before it is looked at again: on disk its descriptor, until one `stat` of its path shows it unchanged (device, inode, size, times); in a bucket its version (size, ETag), every read still pinned to that ETag. `0` checks on every request',
	}),
	OPEN_FILE_CACHE_MAX: integer({
		default: 1024,
		minimum: 1,
		maximum: 100_000,
		description:
			'checked files kept per process (on disk two open descriptors each); the least recently used is let go past it',
	}),
	S3_BUCKET: Optional(
		text({
			description:
				'serve files from this S3-compatible bucket instead of `STORAGE_DIR` (setting both refuses to start); a file is the object `<S3_PREFIX><user_id>/<filename>`',
		}),
	),
	S3_ENDPOINT: Optional(
		parsed(httpUrl, {
			description:
				'endpoint of any S3-compatible service (MinIO, Ceph RGW, SeaweedFS, Garage, R2, …), e.g. `http://minio:9000`; unset: AWS',
		}),
	),
	S3_REGION: text({ default: 'us-east-1', description: 'region the requests are signed for' }),
	S3_ACCESS_KEY_ID: Optional(text({ description: 'access key (`AWS_ACCESS_KEY_ID` is read too)' })),
	S3_SECRET_ACCESS_KEY: Optional(
		text({ secret: true, description: 'secret key (`AWS_SECRET_ACCESS_KEY` is read too)' }),
	),
	S3_SESSION_TOKEN: Optional(
		text({ secret: true, description: 'session token of temporary credentials (`AWS_SESSION_TOKEN` is read too)' }),
	),
	AWS_ACCESS_KEY_ID: Optional(text({ description: 'the AWS name of `S3_ACCESS_KEY_ID` (give one of the two)' })),
	AWS_SECRET_ACCESS_KEY: Optional(
		text({ secret: true, description: 'the AWS name of `S3_SECRET_ACCESS_KEY` (give one of the two)' }),
	),
	AWS_SESSION_TOKEN: Optional(
		text({ secret: true, description: 'the AWS name of `S3_SESSION_TOKEN` (give one of the two)' }),
	),
	S3_PREFIX: text({
		default: '',
		description: 'key prefix of every file in the bucket, e.g. `originals/`',
	}),
	S3_VIRTUAL_HOSTED_STYLE: flag({
		default: false,
		description: 'address the bucket in the host name (`bucket.host`) instead of the path (`host/bucket`)',
	}),
	S3_REDIRECT: oneOf(S3_REDIRECT_MODES, {
		default: 'off',
		description:
			'`unlimited`: GETs with tokens without `max_uses` answer 302 to a presigned URL instead of proxying the bytes (a presigned URL cannot be revoked; budgeted tokens are always proxied)',
	}),
	S3_REDIRECT_TTL: integer({
		default: 60,
		minimum: 1,
		maximum: 300,
		description: 'seconds a redirect’s presigned URL stays valid',
	}),
}
