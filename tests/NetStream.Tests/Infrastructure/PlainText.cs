using System.Text;
using Microsoft.AspNetCore.Http;

namespace NetStream.Tests.Infrastructure;

/// <summary>Plain-text HTTP replies with a Content-Length, so that a raw socket client reads the body as it is (not chunked).</summary>
internal static class PlainText
{
    public static Task WriteAsync(HttpContext context, string text)
    {
        var body = Encoding.ASCII.GetBytes(text);
        context.Response.ContentLength = body.Length;
        return context.Response.Body.WriteAsync(body).AsTask();
    }
}
