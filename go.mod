module mhrun

go 1.26.0

require (
	github.com/alecthomas/kong v1.17.0
	github.com/creack/pty v1.1.24
	github.com/joho/godotenv v1.5.1
	github.com/mitchellh/go-ps v1.0.0
	github.com/robfig/cron/v3 v3.0.1
	golang.org/x/sys v0.50.0
	golang.org/x/term v0.48.0
)

require github.com/fsnotify/fsnotify v1.10.1

require (
	gopkg.in/natefinch/lumberjack.v2 v2.2.1
	sigs.k8s.io/yaml v1.6.0
)

require (
	github.com/google/go-cmp v0.7.0 // indirect
	go.yaml.in/yaml/v2 v2.4.4 // indirect
	go.yaml.in/yaml/v3 v3.0.4 // indirect
)
