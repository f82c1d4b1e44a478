import { dirname, join } from 'node:path'
import { openapi } from '@elysiajs/openapi'
import { Elysia } from 'elysia'
import pkg from '../../../package.json' with { type: 'json' }

const ASSETS_PATH = '/swagger/assets'
const OPENAPI_PATH = '/swagger/json'
// Only these files of swagger-ui-dist are served; nothing else of the package (or disk) is reachable.
const ASSETS: Record<string, string> = {
	'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
	'swagger-ui.css': 'text/css; charset=utf-8',
	'favicon-32x32.png': 'image/png',
	'favicon-16x16.png': 'image/png',
}
const FILE_MEDIA_TYPES = ['application/octet-stream', 'video/*']

type Json = Record<string, unknown>
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

// Elysia coerces numeric query parameters by accepting `anyOf: [numeric
// string, integer]`; clients see an integer parameter, so the document says so.
function integerParameter(schema: unknown): unknown {
	if (!isObject(schema) || !Array.isArray(schema.anyOf)) return schema
	const integer = schema.anyOf.find((s: unknown) => isObject(s) && s.type === 'integer')
	const coercion = schema.anyOf.find((s: unknown) => isObject(s) && s.type === 'string' && s.format === 'integer')
	return schema.anyOf.length === 2 && integer && coercion ? integer : schema
}

/**
 * Three fixes to the generated document: the generator types any string
 * schema as text/plain, but a file body (`format: binary`) is video/* or
 * application/octet-stream; it writes `t.Void` bodies (204, 304) as an
 * invalid `content: { type: 'void' }`, which must simply be absent; and it
 * shows a numeric query parameter's coercion (`anyOf` string or integer).
 */
export function normalizeOpenApi(doc: unknown): unknown {
	if (!isObject(doc) || !isObject(doc.paths)) return doc
	for (const item of Object.values(doc.paths))
		for (const operation of isObject(item) ? Object.values(item) : []) {
			if (isObject(operation) && Array.isArray(operation.parameters))
				for (const parameter of operation.parameters)
					if (isObject(parameter)) parameter.schema = integerParameter(parameter.schema)
			for (const response of isObject(operation) && isObject(operation.responses)
				? Object.values(operation.responses)
				: []) {
				if (!isObject(response) || !isObject(response.content)) continue
				if (!Object.values(response.content).every(isObject)) {
					delete response.content
					continue
				}
				const plain = response.content['text/plain']
				if (isObject(plain) && isObject(plain.schema) && plain.schema.format === 'binary')
					response.content = Object.fromEntries(FILE_MEDIA_TYPES.map((type) => [type, { schema: plain.schema }]))
			}
		}
	return doc
}

export interface DocsModuleDeps {
	readonly enabled: boolean
	readonly publicBaseUrl: string | null
}

/**
 * Swagger UI at /swagger and the OpenAPI 3 document at /swagger/json,
 * generated from the route schemas. Swagger UI's JS and CSS come from the
 * swagger-ui-dist package through this service, never from a CDN.
 */
export function docsModule(deps: DocsModuleDeps) {
	if (!deps.enabled) return new Elysia({ name: 'docs' })
	// Resolve the package's folder without importing it: its entry point
	// evaluates the whole Swagger UI bundle (about 22 MB of resident memory).
	const assetsDir = dirname(Bun.resolveSync('swagger-ui-dist/swagger-ui-bundle.js', import.meta.dir))
	return new Elysia({ name: 'docs' })
		.onAfterHandle({ as: 'global' }, ({ path, response }) =>
			path === OPENAPI_PATH ? normalizeOpenApi(response) : undefined,
		)
		.use(
			openapi({
				provider: 'swagger-ui',
				path: '/swagger',
				specPath: OPENAPI_PATH,
				documentation: {
					info: {
						title: 'download-gate',
						version: pkg.version,
						description:
							'Short-lived, revocable, optionally single-use download tokens for original video files, and fast streaming of those files. Authorize with an API key (X-API-Key) or a user access token to issue tokens; then put the download token in bearerAuth to try the download route.',
					},
					...(deps.publicBaseUrl ? { servers: [{ url: deps.publicBaseUrl }] } : {}),
					tags: [
						{ name: 'tokens', description: 'Issue download tokens (the original route)' },
						{ name: 'downloads', description: 'Download with a token (the original route)' },
						{ name: 'lifecycle', description: 'List and revoke tokens' },
						{ name: 'operations', description: 'Health, readiness and Prometheus metrics' },
					],
					components: {
						securitySchemes: {
							bearerAuth: {
								type: 'http',
								scheme: 'bearer',
								bearerFormat: 'JWT',
								description: 'A download token (download route) or your user access token (token and lifecycle routes)',
							},
							apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'A service key from API_KEYS' },
							metricsToken: {
								type: 'http',
								scheme: 'bearer',
								description: 'METRICS_TOKEN, when the operator set one, for /metrics',
							},
						},
					},
				},
				swagger: {
					cdn: `${ASSETS_PATH}/swagger-ui-bundle.js`,
					theme: `${ASSETS_PATH}/swagger-ui.css`,
					autoDarkMode: false,
					persistAuthorization: false,
					displayRequestDuration: true,
				},
			}),
		)
		.get(
			`${ASSETS_PATH}/:file`,
			({ params, status }) => {
				const type = Object.hasOwn(ASSETS, params.file) ? ASSETS[params.file] : undefined
				if (!type) return status(404, { error: 'not_found', message: 'No such asset.' })
				return new Response(Bun.file(join(assetsDir, params.file)), {
					headers: { 'Content-Type': type, 'Cache-Control': 'public, max-age=86400' },
				})
			},
			{ detail: { hide: true } },
		)
}
