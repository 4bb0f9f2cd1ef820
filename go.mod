module vigil

go 1.26

require (
	github.com/bluenviron/mediacommon/v2 v2.9.3
	github.com/fsnotify/fsnotify v1.10.1
	go.yaml.in/yaml/v3 v3.0.6
)

require (
	github.com/stretchr/testify v1.12.0 // indirect
	golang.org/x/sys v0.13.0 // indirect
)
