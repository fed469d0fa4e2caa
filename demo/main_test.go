package main

import (
	"fmt"
	"net/http/httptest"
	"os"
	"testing"
)

// Issue 17: without a .env, the demo's web answered " from web.1" and the
// one-shot said GREETING="". Without GREETING it says hello.
func TestGreeting(t *testing.T) {
	t.Setenv("PS", "web.1")
	for _, tt := range []struct{ env, want string }{
		{"", "hello from web.1"},
		{"bonjour", "bonjour from web.1"},
	} {
		t.Setenv("GREETING", tt.env)
		rec := httptest.NewRecorder()
		hello(rec, httptest.NewRequest("GET", "/", nil))
		if want := fmt.Sprintf("%s (pid %d)\n", tt.want, os.Getpid()); rec.Body.String() != want {
			t.Errorf("GREETING=%q: %q, want %q", tt.env, rec.Body.String(), want)
		}
	}
}
