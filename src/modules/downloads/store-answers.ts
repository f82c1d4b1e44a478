import { type AppError, StoreUnavailableError, TokenError, TooManyDownloadsError } from '../../errors'
import type { TakeResult } from '../../store/types'

/** A revoked token, or one whose record is gone (expired in the store, or never issued there). */
export const revokedToken = () =>
	new TokenError('token_revoked', 'This download token has been revoked or is no longer valid.')

/**
 * The refusal the store's answer to a take decides (checks 3 within the grace,
 * 5, 7 and 8 of docs/contract.md §3.2, in that order), or null when the record
 * allows the body of `length` bytes. `slotLimit` names the limit a
 * `too_many_downloads` refusal reports.
 */
export function refusalOf(taken: TakeResult, length: number, slotLimit: number): AppError | null {
	switch (taken.status) {
		case 'revoked':
		case 'missing':
			return revokedToken()
		case 'mismatch':
			return new TokenError('invalid_token', "This token's record names another file.")
		case 'expired':
			return new TokenError('token_expired', 'The download token has expired; ask for a new one.')
		case 'used_up':
			return new TokenError(
				'token_used_up',
				`This token's downloads are used up (${taken.bytesLeft} of the ${length} bytes asked for remain).`,
			)
		case 'too_many_downloads':
			return new TooManyDownloadsError(slotLimit, taken.retryAfterS)
		// Only a request that already failed has its reservation cancelled; this one has not.
		case 'cancelled':
			return new StoreUnavailableError()
		default:
			return null
	}
}
