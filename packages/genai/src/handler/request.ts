import type {
  ContentListUnion,
  ContentUnion,
  GenerateContentConfig,
  GenerateContentParameters,
  GenerationConfig,
  SafetySetting,
  Tool,
  ToolConfig,
} from '@google/genai'

/**
 * What a job carries: the body of a Gemini `generateContent` request (its REST shape), plus the
 * model to call when it is not the handler's default.
 */
export interface GenaiRequest {
  /** @defaultValue the handler's model */
  model?: string
  contents: ContentListUnion
  systemInstruction?: ContentUnion
  generationConfig?: GenerationConfig
  safetySettings?: SafetySetting[]
  tools?: Tool[]
  toolConfig?: ToolConfig
  cachedContent?: string
  labels?: Record<string, string>
}

/** The fields of a request that the SDK takes inside its `config`, beside `generationConfig`'s. */
const CONFIG_FIELDS = [
  'systemInstruction',
  'safetySettings',
  'tools',
  'toolConfig',
  'cachedContent',
  'labels',
] as const
const KNOWN_FIELDS: ReadonlySet<string> = new Set(['model', 'contents', 'generationConfig', ...CONFIG_FIELDS])

/**
 * Turns a job's request into the SDK's parameters: `generationConfig`'s fields and the other
 * request fields go into `config`, as the SDK expects them.
 * @throws TypeError (not retryable: the same request would fail again) for a request that is not
 * an object with `contents`, or that has a field a GenerateContentRequest does not.
 */
export function toGenerateParams(req: unknown, defaultModel: string): GenerateContentParameters {
  if (typeof req !== 'object' || req === null || Array.isArray(req)) {
    throw new TypeError(`the request must be a GenerateContentRequest object (got ${describe(req)})`)
  }
  const fields = req as Record<string, unknown>
  for (const name of Object.keys(fields)) {
    if (!KNOWN_FIELDS.has(name)) {
      throw new TypeError(
        `the request has a field '${name}' that a GenerateContentRequest does not (known: ${[...KNOWN_FIELDS].join(', ')})`,
      )
    }
  }
  const { model = defaultModel, contents, generationConfig } = fields as Partial<GenaiRequest>
  if (contents === undefined || contents === null) throw new TypeError('the request has no contents')
  if (typeof model !== 'string' || model === '') {
    throw new TypeError(`the request's model must be a non-empty string (got ${describe(model)})`)
  }
  if (generationConfig !== undefined && (typeof generationConfig !== 'object' || generationConfig === null)) {
    throw new TypeError(
      `the request's generationConfig must be an object (got ${describe(generationConfig)})`,
    )
  }
  const config: GenerateContentConfig = { ...(generationConfig as GenerateContentConfig | undefined) }
  for (const name of CONFIG_FIELDS) {
    if (fields[name] !== undefined) Object.assign(config, { [name]: fields[name] })
  }
  return { model, contents, config }
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  return Array.isArray(value) ? 'an array' : typeof value
}
