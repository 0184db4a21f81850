/** Options of `createGenaiHandler`; each unset one comes from its environment variable, then from {@link GENAI_DEFAULTS}. */
export interface GenaiHandlerOptions {
  /** The Gemini API key. @defaultValue env `GEMINI_API_KEY`, else `GOOGLE_API_KEY` */
  apiKey?: string
  /** Call Vertex AI rather than the Gemini API. @defaultValue env `GOOGLE_GENAI_USE_VERTEXAI` (`true` or `1`), else false */
  vertexai?: boolean
  /** The Google Cloud project (Vertex AI). @defaultValue env `GOOGLE_CLOUD_PROJECT` */
  project?: string
  /** The Google Cloud location (Vertex AI). @defaultValue env `GOOGLE_CLOUD_LOCATION`, else the SDK's `global` */
  location?: string
  /** The model of requests that name none. @defaultValue env `MODEL_ID`, else `gemini-2.5-flash` */
  model?: string
  /** Send requests there instead of Google's endpoint (a simulator, a proxy). @defaultValue env `GENAI_BASE_URL` */
  baseUrl?: string
  /** Where the defaults above are read. @defaultValue process.env */
  env?: Readonly<Record<string, string | undefined>>
}

/** Defaults of the handler's options, after the environment. */
export const GENAI_DEFAULTS = Object.freeze({ model: 'gemini-2.5-flash', vertexai: false })

/** The handler's settings once the options, the environment and the defaults are merged. */
export interface ResolvedGenaiOptions {
  apiKey: string | undefined
  vertexai: boolean
  project: string | undefined
  location: string | undefined
  model: string
  baseUrl: string | undefined
}

/**
 * Merges the options with the environment and the defaults, and checks that the result can
 * call a model.
 * @throws Error naming the variables to set when there is no key (Gemini API) or no project or
 * key (Vertex AI), or when the base URL is not a URL.
 */
export function resolveGenaiOptions(options: GenaiHandlerOptions): ResolvedGenaiOptions {
  const env = options.env ?? process.env
  const read = (name: string) => {
    const value = env[name]?.trim()
    return value === '' ? undefined : value
  }
  const flag = read('GOOGLE_GENAI_USE_VERTEXAI')?.toLowerCase()
  const resolved: ResolvedGenaiOptions = {
    apiKey: options.apiKey ?? read('GEMINI_API_KEY') ?? read('GOOGLE_API_KEY'),
    vertexai:
      options.vertexai ?? (flag === undefined ? GENAI_DEFAULTS.vertexai : flag === 'true' || flag === '1'),
    project: options.project ?? read('GOOGLE_CLOUD_PROJECT'),
    location: options.location ?? read('GOOGLE_CLOUD_LOCATION'),
    model: options.model ?? read('MODEL_ID') ?? GENAI_DEFAULTS.model,
    baseUrl: options.baseUrl ?? read('GENAI_BASE_URL'),
  }
  if (!resolved.vertexai && !resolved.apiKey) {
    throw new Error(
      'no Gemini API key: set GEMINI_API_KEY (or pass apiKey), or GOOGLE_GENAI_USE_VERTEXAI=true with GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION for Vertex AI',
    )
  }
  if (resolved.vertexai && !resolved.project && !resolved.apiKey) {
    throw new Error(
      'Vertex AI needs a project: set GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION (or pass project and location), or an API key for express mode',
    )
  }
  if (resolved.baseUrl !== undefined && !URL.canParse(resolved.baseUrl)) {
    throw new Error(
      `GENAI_BASE_URL (baseUrl) must be a URL such as http://127.0.0.1:8080 (got '${resolved.baseUrl}')`,
    )
  }
  return resolved
}
