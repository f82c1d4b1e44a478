// nginx with secure_link, the usual way to hand out expiring download links
// without an application server: the URL carries `md5` and `expires`, computed
// as in the nginx docs' secure_link_md5 example. Debian's nginx (nginx-light
// has the module); its own prefix and config in a temp dir, `daemon off`.
// No revocation, no use limits, no Redis: the floor a gate is compared with.

import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type BenchContext, log, STORAGE } from '../lib/context'
import { answers, freePort, spawnServer, waitFor, which } from '../lib/proc'
import { nginxVersion } from '../lib/versions'
import type { FileServer } from './types'

const LINK_SECRET = 'bench-nginx-secret'

/** `md5` as secure_link expects it: base64url of MD5(expires + uri + remote_addr + ' ' + secret), no padding. */
export function secureLinkMd5(expires: number, uri: string, remoteAddr: string, secret = LINK_SECRET): string {
	return createHash('md5').update(`${expires}${uri}${remoteAddr} ${secret}`).digest('base64url')
}

function config(prefix: string, port: number, workers: number): string {
	// Running as root, nginx would drop its workers to `nobody`, who may not read the bench's data.
	const user = process.getuid?.() === 0 ? 'user root root;' : ''
	return `
${user}
daemon off;
master_process on;
worker_processes ${workers};
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000000;
	client_body_temp_path ${prefix}/client_body;
	proxy_temp_path ${prefix}/proxy;
	fastcgi_temp_path ${prefix}/fastcgi;
	uwsgi_temp_path ${prefix}/uwsgi;
	scgi_temp_path ${prefix}/scgi;
	types { video/mp4 mp4; }
	default_type application/octet-stream;
	server {
		listen 127.0.0.1:${port};
		location /health { return 200 "ok"; }
		location /api/download/ {
			secure_link $arg_md5,$arg_expires;
			secure_link_md5 "$secure_link_expires$uri$remote_addr ${LINK_SECRET}";
			if ($secure_link = "") { return 403; }
			if ($secure_link = "0") { return 410; }
			alias ${STORAGE}/;
		}
	}
}
`
}

const MISSING = 'nginx is not installed (`apt-get install -y nginx-light`): the nginx secure_link target was skipped'

/** Starts nginx with `workers` worker processes, or returns null (and says so once) when nginx is missing. */
export async function startNginx(ctx: BenchContext, opts: { workers: number }): Promise<FileServer | null> {
	const bin = which('nginx')
	const version = nginxVersion()
	if (!bin || !version) {
		if (!ctx.notices.has(MISSING)) log(MISSING)
		ctx.notices.add(MISSING)
		return null
	}
	const port = freePort()
	const url = `http://127.0.0.1:${port}`
	const prefix = mkdtempSync(join(tmpdir(), 'bench-nginx-'))
	mkdirSync(join(prefix, 'logs'))
	const conf = join(prefix, 'nginx.conf')
	writeFileSync(conf, config(prefix, port, opts.workers))
	// -e: the error log before the config is read, else Debian's /var/log/nginx/error.log.
	const managed = spawnServer([bin, '-p', prefix, '-c', conf, '-e', join(prefix, 'error.log')])
	const stop = async () => {
		await managed.stop()
		rmSync(prefix, { recursive: true, force: true })
	}
	try {
		await waitFor('nginx', answers(`${url}/health`), { managed })
	} catch (err) {
		await stop()
		throw err
	}
	return {
		name: 'nginx secure_link',
		runtime: version,
		processes: opts.workers,
		url,
		pids: [managed.pid],
		redisPid: null,
		stop,
		async download(user, file) {
			const path = `/api/download/${user}/${encodeURIComponent(file)}`
			const expires = Math.floor(Date.now() / 1000) + 86_400
			// nginx hashes $uri, the decoded path.
			const md5 = secureLinkMd5(expires, `/api/download/${user}/${file}`, '127.0.0.1')
			return { url: `${url}${path}?md5=${md5}&expires=${expires}` }
		},
	}
}
