module github.com/anylisten/anylisten

go 1.23.0

require (
	github.com/Microsoft/go-winio v0.6.2
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/google/go-cmp v0.7.0
	github.com/mdlayher/vsock v1.2.1
	golang.org/x/net v0.43.0
	golang.org/x/sys v0.35.0
)

require (
	github.com/mdlayher/socket v0.5.1 // indirect
	golang.org/x/sync v0.16.0 // indirect
)
