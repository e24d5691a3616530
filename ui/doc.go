// Package ui owns the web pages: templ components (pure views) and the handlers
// that fetch their data through small interfaces and render them.
//
// Components never fetch data and never pass telemetry text through templ.Raw.
// Handlers render into a buffer first, so a failure becomes a clean error page,
// never half a page. Elements that browser tests use carry data-testid attributes.
package ui
