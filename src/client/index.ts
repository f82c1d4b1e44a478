// The typed client of download-gate (`download-gate/client`): Eden Treaty, resumable downloads, token pages.
export type { App } from '../app'
export { type ClientOptions, createClient, type DownloadGateClient } from './create'
export {
	type ClientErrorCode,
	DownloadError,
	type DownloadErrorCode,
	type DownloadOptions,
	type DownloadProgress,
	type DownloadResult,
	type DownloadSettings,
	type DownloadTarget,
	downloadToFile,
	type FetchLike,
	type IssuedDownload,
} from './download'
export { ListingError, type ListingErrorCode, type TokenPagesOptions, tokenPages } from './token-pages'
