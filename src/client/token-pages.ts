// Paging through a user's live tokens (docs/contract.md §3.3) with the typed Eden client: one request per page.
import type { ErrorCode } from '../errors'
import type { TokenList } from '../modules/lifecycle/model'
import type { DownloadGateClient } from './create'
import { errorFromBody } from './download-error'

/** Why a page of the listing could not be had. */
export type ListingErrorCode =
	| ErrorCode
	/** No answer came (connection refused, reset, timed out): `cause` holds what was thrown. */
	| 'network_error'
	/** An answer the service does not send: a proxy's page, a body that is not a page of the listing. */
	| 'unexpected_response'
	| (string & {})

/** A page refused or not answered: the service's `{ error, message }` with its status, or a client-side code. */
export class ListingError extends Error {
	override readonly name = 'ListingError'

	constructor(
		/** Stable machine-readable code, e.g. `invalid_request` (a bad limit or cursor), `unauthorized`, `network_error`. */
		readonly code: ListingErrorCode,
		/** The HTTP status that carried it; null when no answer did. */
		readonly status: number | null,
		message: string,
		options?: { cause?: unknown },
	) {
		super(message, options)
	}
}

/** Where a listing starts, how big its pages are, and what each request carries. */
export interface TokenPagesOptions {
	/** Tokens per page, 1 to 1,000; the service's default (100) when absent. */
	readonly limit?: number
	/** Start after this `next_cursor` of an earlier page (to resume a listing); the first page when absent. */
	readonly cursor?: string
	/**
	 * Called before each page's request for the options it is sent with, e.g.
	 * `() => ({ signal: AbortSignal.timeout(10_000) })`: a bound per page, not on the whole listing.
	 */
	readonly requestInit?: () => RequestInit
}

/** A page's body, as a service before paging sent it too: then without `next_cursor`, every token in one page. */
type PageBody = Omit<TokenList, 'next_cursor'> & { readonly next_cursor?: string | null }

const isPage = (data: unknown): data is PageBody => {
	if (typeof data !== 'object' || data === null) return false
	const { tokens, next_cursor } = data as { tokens?: unknown; next_cursor?: unknown }
	return Array.isArray(tokens) && (next_cursor === undefined || next_cursor === null || typeof next_cursor === 'string')
}

/**
 * Pages through `userId`'s live tokens, newest first, passing `limit` and each
 * `next_cursor` as the query; yields every page as it arrives and ends after
 * the one whose `next_cursor` is null (or absent: a service from before paging
 * answers every token at once). Pages stay consistent while tokens are
 * issued and revoked in between. Throws `ListingError`: the service's code for
 * an error answer (`invalid_request` for a bad limit or cursor, `unauthorized`,
 * `forbidden`, `store_unavailable`, …), `network_error` when no answer came,
 * `unexpected_response` for an answer that is not a page; an aborted signal
 * throws its reason.
 *
 * @example
 * for await (const page of tokenPages(client, '123', { limit: 1000 }))
 *   for (const token of page.tokens) console.log(token.jti, token.expires_at)
 */
export async function* tokenPages(
	client: DownloadGateClient,
	userId: string,
	options: TokenPagesOptions = {},
): AsyncGenerator<TokenList, void, undefined> {
	// Eden does not encode path parameters (createClient).
	const route = client.api.users({ user_id: encodeURIComponent(userId) }).tokens
	let cursor = options.cursor
	for (;;) {
		const init = options.requestInit?.() ?? {}
		let reply: Awaited<ReturnType<typeof route.get>>
		try {
			reply = await route.get({ query: { limit: options.limit, cursor }, fetch: init })
		} catch (err) {
			// Eden reads the body outside its own try: a body that is not JSON, or a read cut or timed out.
			if (init.signal?.aborted) throw init.signal.reason
			if (err instanceof SyntaxError)
				throw new ListingError('unexpected_response', null, 'the answer is not JSON', { cause: err })
			throw new ListingError('network_error', null, `request failed: ${String(err)}`, { cause: err })
		}
		if (reply.error !== null) {
			const { status, value } = reply.error
			// Eden answers a fetch that threw (refused, aborted) as a 503 carrying what was thrown.
			if (value instanceof Error) {
				if (init.signal?.aborted) throw init.signal.reason
				throw new ListingError('network_error', null, `request failed: ${value.message}`, { cause: value })
			}
			const text = typeof value === 'string' ? value : value === undefined ? '' : JSON.stringify(value)
			const refused = errorFromBody(status, text)
			throw new ListingError(refused.code, status, refused.message)
		}
		const body: unknown = reply.data
		if (!isPage(body))
			throw new ListingError('unexpected_response', reply.status, `HTTP ${reply.status}: not a page of the listing`)
		const page: TokenList = { ...body, next_cursor: body.next_cursor ?? null }
		yield page
		// A next_cursor that names the page just read would page for ever: no service of ours sends one.
		if (page.next_cursor === null) return
		if (page.next_cursor === cursor)
			throw new ListingError('unexpected_response', reply.status, 'the listing gave the same cursor twice')
		cursor = page.next_cursor
	}
}
