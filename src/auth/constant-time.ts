import { createHash, timingSafeEqual } from 'node:crypto'

const digest = (value: string) => createHash('sha256').update(value).digest()

/**
 * True when `candidate` equals one of `secrets`. Both sides are hashed first so
 * the comparison takes the same time whatever the lengths, and every secret is
 * compared, so timing does not tell which one matched.
 */
export function matchesOneOf(candidate: string, secrets: readonly Buffer[]): boolean {
	const probe = digest(candidate)
	let found = false
	for (const secret of secrets) found = timingSafeEqual(probe, secret) || found
	return found
}

/** Pre-hashes secrets once at start-up for `matchesOneOf`. */
export function hashSecrets(secrets: readonly string[]): Buffer[] {
	return secrets.map(digest)
}
