import { type Treaty, treaty } from '@elysiajs/eden'
import type { App } from '../app'

export type { App } from '../app'
export {
	DownloadError,
	type DownloadErrorCode,
	type DownloadOptions,
	type DownloadProgress,
	type DownloadResult,
	downloadToFile,
	type FetchLike,
} from './download'

/** How a typed client authenticates to the token and lifecycle routes. */
export interface ClientOptions {
	/** A service key, sent as `X-API-Key` (may act for any user). */
	readonly apiKey?: string
	/** The app's own user access token, sent as `Authorization: Bearer` (acts for its own user only). */
	readonly accessToken?: string
}

/** The typed Eden Treaty client of download-gate. */
export type DownloadGateClient = Treaty.Create<App>

/**
 * Builds a typed Eden Treaty client for a download-gate at `baseUrl`, e.g.
 * `createClient('https://files.example.com', { apiKey })`.
 *
 * Path parameters are passed one segment at a time and are **not**
 * percent-encoded by Eden: encode filenames yourself
 * (`({ filename: encodeURIComponent(name) })`). Date-like strings are left as
 * strings (`parseDate: false`), so `expires_at` is the string its type says.
 *
 * @example
 * const client = createClient(base, { apiKey })
 * const { data, error } = await client.api['get-download-token']({ user_id: '123' })({ filename: 'v.mp4' })
 *   .get({ query: { ttl: '60' } })
 */
export function createClient(baseUrl: string, options: ClientOptions = {}): DownloadGateClient {
	const headers: Record<string, string> = {}
	if (options.apiKey !== undefined) headers['x-api-key'] = options.apiKey
	if (options.accessToken !== undefined) headers.authorization = `Bearer ${options.accessToken}`
	return treaty<App>(baseUrl, { headers, parseDate: false })
}
