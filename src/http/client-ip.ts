import { firstHop } from './forwarded'

/** What the HTTP server tells about a request's peer (Bun's `server.requestIP`). */
export interface PeerInfo {
	requestIP(request: Request): { address: string } | null
}

/**
 * The client's IP: the socket's peer, or with `trustProxy` the first
 * `X-Forwarded-For` hop (only behind a proxy that sets it, or clients could
 * pick their own). `unknown` when neither is available.
 */
export function clientIp(request: Request, server: PeerInfo | null, trustProxy: boolean): string {
	if (trustProxy) {
		const forwarded = firstHop(request.headers.get('x-forwarded-for'))
		if (forwarded) return forwarded.slice(0, 64)
	}
	return server?.requestIP(request)?.address ?? 'unknown'
}
