// Package docs holds no code, only the tests of the project's Markdown
// (README.md and docs/): every relative link and anchor resolves, every
// docs/ page is reachable from the README, the README stays a first read,
// and the configuration page lists every environment variable.
package docs
