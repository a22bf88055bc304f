# wagate, built from this checkout.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/wagate ./cmd/wagate

FROM gcr.io/distroless/static-debian12
COPY --from=build /out/wagate /usr/local/bin/
EXPOSE 8080 8090
ENTRYPOINT ["/usr/local/bin/wagate"]
CMD ["dev", "-http", "0.0.0.0:8080", "-sim", "0.0.0.0:8090"]
