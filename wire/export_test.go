package wire

// Test helpers of package wire that its external tests use.
var (
	ProseText = proseText
	ChatJSON  = chatJSON
)
