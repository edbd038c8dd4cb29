// Package browser tests Shockwave's web pages in a real browser: headless
// Chromium (Debian's chromium package), driven over the DevTools protocol
// with github.com/chromedp/chromedp.
//
// Without Chromium the tests are skipped, except under CI (the CI
// environment variable set), where they fail: .ci/run installs it. With
// SHOCKWAVE_SCREENSHOT=1, TestChat writes docs/chat.png, the README's
// picture of two browsers chatting.
//
//	go test ./tests/browser/
//	SHOCKWAVE_SCREENSHOT=1 go test -run TestChat ./tests/browser/
package browser
