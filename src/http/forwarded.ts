/** The first (client-most) value of an `X-Forwarded-*` header, or null when absent or empty. */
export function firstHop(value: string | null): string | null {
	const first = value?.split(',')[0]?.trim()
	return first ? first : null
}
