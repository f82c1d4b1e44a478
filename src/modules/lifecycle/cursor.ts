import { createHmac, timingSafeEqual } from 'node:crypto'
import { POSITION_PATTERN } from '../../store/types'

/** Opaque listing cursors: a position in one user's listing, sealed so that it cannot be edited or reused for another user. */
export interface CursorCodec {
	/** The cursor of `position` in `userId`'s listing. */
	seal(userId: string, position: string): string
	/** The position `cursor` names in `userId`'s listing, or null when it is malformed, altered or another user's. */
	open(userId: string, cursor: string): string | null
}

/**
 * A sealed cursor: the base64url position (14 to 77 bytes: 12 digits, a colon
 * and a jti of 1 to 64 characters), a dot, 16 bytes of MAC in base64url.
 */
export const CURSOR_PATTERN = /^[A-Za-z0-9_-]{19,103}\.[A-Za-z0-9_-]{22}$/

/**
 * Builds the codec over a key derived from `secret` (the token signing key:
 * cursors need no setting of their own, and a rotation only ends cursors in
 * flight, which a client restarts from the first page).
 */
export function createCursorCodec(secret: string): CursorCodec {
	const key = createHmac('sha256', secret).update('download-gate/listing-cursor').digest()
	const mac = (userId: string, position: string) =>
		createHmac('sha256', key).update(userId).update('\0').update(position).digest().subarray(0, 16)
	return {
		seal(userId, position) {
			return `${Buffer.from(position).toString('base64url')}.${mac(userId, position).toString('base64url')}`
		},
		open(userId, cursor) {
			if (!CURSOR_PATTERN.test(cursor)) return null
			const [encoded = '', sealed = ''] = cursor.split('.')
			const position = Buffer.from(encoded, 'base64url').toString()
			// Canonical base64url only: another spelling of the same bytes is not this cursor.
			if (Buffer.from(position).toString('base64url') !== encoded || !POSITION_PATTERN.test(position)) return null
			const given = Buffer.from(sealed, 'base64url')
			// The MAC's last character carries 2 bits and 4 unused ones: only the canonical spelling is this cursor.
			if (given.toString('base64url') !== sealed) return null
			const expected = mac(userId, position)
			return given.length === expected.length && timingSafeEqual(given, expected) ? position : null
		},
	}
}
