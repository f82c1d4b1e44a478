/** The request id the app's first hook put on the response (`X-Request-Id`), for what a route hands on (events). */
export function requestIdOf(set: { headers: Record<string, unknown> }): string | undefined {
	const id = set.headers['x-request-id']
	return typeof id === 'string' ? id : undefined
}
