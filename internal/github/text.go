package github

import (
	"html"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Truncate returns s if it has at most max characters; otherwise as much of
// s as fits — cut after a whole line when one ends in the second half,
// never inside a UTF-8 sequence — followed by note on a line of its own,
// all within max characters. Truncate the content before wrapping it in a
// DetailsBlock, so that the fence stays closed.
func Truncate(s string, max int, note string) string {
	if max <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	suffix := note
	if note != "" {
		suffix = "\n" + note
	}
	budget := max - utf8.RuneCountInString(suffix)
	if budget <= 0 {
		return cutRunes(note, max)
	}
	head := cutRunes(s, budget)
	if i := strings.LastIndexByte(head, '\n'); i >= 0 && i >= len(head)/2 {
		head = head[:i+1]
	}
	if strings.HasSuffix(head, "\n") && note != "" {
		return head + note
	}
	return head + suffix
}

// cutRunes returns the first n runes of s.
func cutRunes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

// oneLine folds line breaks and tabs into spaces and trims.
func oneLine(s string) string {
	return strings.TrimSpace(strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ").Replace(s))
}

// DetailsBlock renders a collapsed section:
//
//	<details><summary>SUMMARY</summary>
//
//	```
//	CONTENT
//	```
//
//	</details>
//
// The summary is HTML-escaped and kept on one line; the fence is longer than
// any run of backticks in content, so nothing in content can close it.
func DetailsBlock(summary, content string) string { return DetailsBlockLang(summary, "", content) }

var langRE = regexp.MustCompile(`^[A-Za-z0-9_+.-]*$`)

// DetailsBlockLang is DetailsBlock with an info string for the fence
// (e.g. "diff" for syntax highlighting); an invalid one is dropped.
func DetailsBlockLang(summary, lang, content string) string {
	if !langRE.MatchString(lang) {
		lang = ""
	}
	fence := strings.Repeat("`", max(3, longestRun(content, '`')+1))
	var b strings.Builder
	b.WriteString("<details><summary>")
	b.WriteString(html.EscapeString(oneLine(summary)))
	b.WriteString("</summary>\n\n")
	b.WriteString(fence)
	b.WriteString(lang)
	b.WriteString("\n")
	b.WriteString(content)
	if content != "" && !strings.HasSuffix(content, "\n") {
		b.WriteString("\n")
	}
	b.WriteString(fence)
	b.WriteString("\n\n</details>\n")
	return b.String()
}

func longestRun(s string, c byte) int {
	best, cur := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			cur++
			best = max(best, cur)
		} else {
			cur = 0
		}
	}
	return best
}
