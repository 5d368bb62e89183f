module github.com/autodiscover-proxy/autodiscover-proxy

go 1.26.8

require (
	github.com/beevik/etree v1.8.1 // indirect
	github.com/gorilla/mux v1.8.1 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)
