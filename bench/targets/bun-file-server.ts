// The upper bound: a plain Bun.file server with no checks at all. Serves
// `<BASELINE_DIR>/<user>/<file>` for GET /api/download/:user/:file, shares the
// port with its siblings (reusePort) so 1 and 2 processes can be compared.
import { join } from 'node:path'

const root = process.env.BASELINE_DIR ?? '.'
const port = Number(process.env.PORT ?? 3100)
const prefix = '/api/download/'

Bun.serve({
	port,
	hostname: '127.0.0.1',
	reusePort: true,
	fetch(request) {
		const path = new URL(request.url).pathname
		if (!path.startsWith(prefix)) return new Response('not found', { status: 404 })
		return new Response(Bun.file(join(root, decodeURIComponent(path.slice(prefix.length)))))
	},
})
