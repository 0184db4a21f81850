export { type ApiKeys, loadApiKeys, MIN_KEY_LENGTH, parseApiKeys } from './api-keys.js'
export { createGateway, type Gateway } from './gateway.js'
export { type GoogleErrorBody, httpFailureOf } from './google-error.js'
export { GATEWAY_DEFAULTS, type GatewayOptions } from './options.js'
