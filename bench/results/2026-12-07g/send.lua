wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer dev-staff-token"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"guest_phone":"+14155550123","message_type":"text","content":{"text":"Your room 412 is ready. Reply CHECKIN to get your digital key."}}'
